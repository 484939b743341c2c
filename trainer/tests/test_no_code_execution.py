"""The trainer never executes code from a config or a checkpoint (issue 17): no eval/exec, YAML
only through a safe loader, torch.load only with weights_only=True, weights only as safetensors,
no trust_remote_code; a crafted trainer_state.pt is refused, its payload never runs; run-folder
paths that are symbolic links are never written through."""

from __future__ import annotations

import ast
import os
import pickle
from pathlib import Path

import pytest
import torch

from conftest import TRAINER

from finetune_lab.checkpoint import STATE_FILE, list_checkpoints, load_trainer_state
from finetune_lab.train import run

PACKAGE = TRAINER / "finetune_lab"


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            owner = f.value.id if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else ""
            yield node, owner, name, isinstance(f, ast.Name)


def test_no_source_file_of_the_trainer_can_execute_data():
    checked = 0
    for file in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
        for node, owner, name, bare in _calls(tree):
            where = f"{file.name}:{node.lineno}"
            kwargs = {k.arg: k.value for k in node.keywords}
            # the builtins (bare or builtins.x), not methods of the same name (module.eval() switches a layer's mode)
            assert name not in ("eval", "exec", "compile") or not (bare or owner == "builtins"), f"{where}: {name}()"
            assert not (owner in ("pickle", "dill", "cloudpickle", "marshal") and name in ("load", "loads")), f"{where}: {owner}.{name}"
            if owner == "yaml":
                assert name not in ("unsafe_load", "full_load", "load_all"), f"{where}: yaml.{name}"
                if name == "load":
                    loader = kwargs.get("Loader")
                    assert isinstance(loader, ast.Name) and loader.id in ("Yaml12Loader", "SafeLoader", "CSafeLoader"), f"{where}: yaml.load without a safe Loader"
            if owner == "torch" and name == "load":
                wo = kwargs.get("weights_only")
                assert isinstance(wo, ast.Constant) and wo.value is True, f"{where}: torch.load without weights_only=True"
            if owner == "dcp" and name == "load":  # DCP's own reader unpickles its metadata file
                reader = kwargs.get("storage_reader")
                assert isinstance(reader, ast.Call) and getattr(reader.func, "id", "") == "SafeFileSystemReader", \
                    f"{where}: dcp.load without storage_reader=SafeFileSystemReader(...)"
            if "trust_remote_code" in kwargs:
                value = kwargs["trust_remote_code"]
                assert isinstance(value, ast.Constant) and value.value is False, f"{where}: trust_remote_code not False"
            if name == "save_pretrained":
                sf = kwargs.get("safe_serialization")
                assert sf is None or (isinstance(sf, ast.Constant) and sf.value is True), f"{where}: pickled weights"
            checked += 1
    assert checked > 500


class _Payload:
    """What a crafted checkpoint would carry: unpickling it runs a command."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_crafted_trainer_state_is_refused_and_its_payload_never_runs(tmp_path, make_run):
    run_dir = make_run(checkpoint={"every_steps": 2, "keep_last": 5})
    assert run(run_dir, stop_after=2) == 0
    newest = list_checkpoints(run_dir)[-1]
    marker = tmp_path / "pwned"
    state = torch.load(newest / STATE_FILE, map_location="cpu", weights_only=True)
    state["payload"] = _Payload(marker)
    with open(newest / STATE_FILE, "wb") as f:
        pickle.dump(state, f)  # what torch.save would write for it, in the legacy pickle format
    with pytest.raises(RuntimeError, match="holds more than tensors and plain values"):
        load_trainer_state(newest / STATE_FILE)
    assert run(run_dir, resume=True) == 1
    assert not marker.exists(), "the checkpoint's payload ran"
    status = (run_dir / "status.json").read_text()
    assert "holds more than tensors" in status


def test_the_checkpoints_folder_as_a_symlink_is_never_written_through(tmp_path, make_run):
    run_dir = make_run()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "step-000001").mkdir()  # what a prune would delete
    (run_dir / "checkpoints").symlink_to(elsewhere)
    assert run(run_dir) == 1
    assert sorted(p.name for p in elsewhere.iterdir()) == ["step-000001"]
    assert "symbolic link" in (run_dir / "status.json").read_text()


def test_events_and_status_are_never_written_through_a_planted_symlink(tmp_path, make_run):
    run_dir = make_run()
    target = tmp_path / "bashrc"
    target.write_text("untouched\n")
    (run_dir / "events.jsonl").symlink_to(target)
    assert run(run_dir) == 1
    assert target.read_text() == "untouched\n"


def test_an_fsdp_optimizer_state_loads_but_crafted_metadata_never_runs(tmp_path):
    """DCP (an FSDP run's sharded optimizer state) keeps a pickled .metadata file: a real one is read
    back by the restricted unpickler, a crafted one is refused and its payload never runs."""
    import torch.distributed.checkpoint as dcp
    from finetune_lab.safe_dcp import SafeFileSystemReader

    folder = tmp_path / "optimizer"
    saved = {"optimizer": {"state": {"w.exp_avg": torch.arange(6.0).reshape(2, 3), "step": torch.tensor(3.0)},
                           "lr": 0.5, "name": "adamw"}}
    dcp.save(saved, checkpoint_id=str(folder))
    back = {"optimizer": {"state": {"w.exp_avg": torch.zeros(2, 3), "step": torch.tensor(0.0)}, "lr": 0.0, "name": ""}}
    dcp.load(back, storage_reader=SafeFileSystemReader(folder))
    assert torch.equal(back["optimizer"]["state"]["w.exp_avg"], saved["optimizer"]["state"]["w.exp_avg"])
    assert back["optimizer"]["lr"] == 0.5 and back["optimizer"]["name"] == "adamw"

    marker = tmp_path / "ran"
    (folder / ".metadata").write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(pickle.UnpicklingError, match=r"DCP metadata names (posix|os)\.system"):
        SafeFileSystemReader(folder).read_metadata()
    # Through dcp.load too (which wraps it in a CheckpointException, a BaseException)
    with pytest.raises(BaseException, match=r"DCP metadata names (posix|os)\.system"):
        dcp.load(back, storage_reader=SafeFileSystemReader(folder))
    assert not marker.exists()
