"""launcher.sharding fsdp: FSDP2 over two CPU processes (gloo) under torchrun. The same losses,
gradient norms, evals and spectra as DDP over two processes; one consolidated model.safetensors
that transformers loads; a stopped run resumes to the uninterrupted losses."""

import json
import os
import subprocess
import sys

import pytest
import torch
import yaml
from conftest import TRAINER, assert_valid_run_files, base_config
from safetensors.torch import load_file

STEPS = 4
TRAIN = {"steps": STEPS, "batch_size": 2, "warmup_steps": 1, "lr": 1e-3, "device": "cpu", "grad_clip": 0.5}
OBSERVE = {
    "evals": {"every_steps": 2, "learning": [
        {"name": "code", "type": "loss", "data": str(TRAINER / "tests" / "fixtures" / "code.jsonl"), "max_examples": 2},
        {"name": "sums", "type": "exact_match", "data": "builtin:arithmetic#heldout", "max_examples": 2,
         "max_new_tokens": 4}]},
    "spectra": {"every_steps": 2, "top_k": 8},
}


def write_run(folder, sharding: str, steps: int = STEPS, **overrides):
    folder.mkdir()
    cfg = base_config(**{"method": "full", "train": {**TRAIN, "steps": steps},
                         "launcher": {"kind": "torchrun", "nproc_per_node": 2, "sharding": sharding},
                         "checkpoint": {"every_steps": 0, "keep_last": 2}, **OBSERVE, **overrides})
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg))
    return folder


def launch(run_dir, *extra, stop_after=None):
    """As the extension starts it: `python -m finetune_lab run` becomes torchrun's agent."""
    env = {**os.environ, "PYTHONPATH": str(TRAINER), "OMP_NUM_THREADS": "1"}
    if stop_after:
        env["FINETUNE_LAB_STOP_AFTER"] = str(stop_after)
    with open(run_dir / "train.log", "a") as log:
        proc = subprocess.run([sys.executable, "-m", "finetune_lab", "run", "--run-dir", str(run_dir), *extra],
                              stdout=log, stderr=subprocess.STDOUT, env=env, cwd=run_dir, timeout=600)
    assert proc.returncode == 0, (run_dir / "train.log").read_text()[-4000:]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Uninterrupted DDP and FSDP runs of the same config."""
    root = tmp_path_factory.mktemp("fsdp")
    out = {}
    for sharding in ("none", "fsdp"):
        out[sharding] = write_run(root / sharding, sharding)
        launch(out[sharding])
    return out


def of_type(events, kind):
    return [e for e in events if e["type"] == kind]


def test_fsdp_matches_ddp_over_two_processes(runs):
    ddp, fsdp = (assert_valid_run_files(runs[s]) for s in ("none", "fsdp"))
    assert "(FSDP)" in (runs["fsdp"] / "train.log").read_text()
    assert of_type(fsdp, "run_started")[0]["params"] == of_type(ddp, "run_started")[0]["params"]  # whole, not a shard
    for events in (ddp, fsdp):
        assert events[-1]["status"] == "completed" and of_type(events, "run_started")[0]["world_size"] == 2
        assert len(of_type(events, "run_finished")) == 1  # rank 0 alone writes
    # same updates: losses, gradient norms (before clipping at 0.5, so clipping acts) and tokens
    for a, b in zip(of_type(ddp, "train"), of_type(fsdp, "train"), strict=True):
        assert a["tokens"] == b["tokens"]
        assert abs(a["loss"] - b["loss"]) < 1e-4, (a, b)
        assert abs(a["grad_norm"] - b["grad_norm"]) < 1e-4 * a["grad_norm"], (a, b)
        assert a["grad_norm"] > 0.5  # clipped: a wrong clip under FSDP would change the next losses
    # evals: every rank evaluates (each forward gathers the layers); generation stays in step
    assert [e["step"] for e in of_type(fsdp, "eval")] == [0, 2, 4]
    for a, b in zip(of_type(ddp, "eval"), of_type(fsdp, "eval"), strict=True):
        for ta, tb in zip(a["tasks"], b["tasks"], strict=True):
            assert ta["name"] == tb["name"] and abs(ta["value"] - tb["value"]) < 1e-4, (ta, tb)
    # spectra: each full matrix gathered on rank 0, the same singular values as DDP's
    spectra = of_type(fsdp, "spectrum")
    assert {e["step"] for e in spectra} == {2, 4} and {e["kind"] for e in spectra} == {"attention", "mlp"}
    assert len(spectra) == 2 * 2 * 7  # steps x layers x (q, k, v, o, gate, up, down)
    for a, b in zip(of_type(ddp, "spectrum"), spectra, strict=True):
        assert (a["module"], a["shape"], a["rank90"]) == (b["module"], b["shape"], b["rank90"])
        assert max(abs(x - y) for x, y in zip(a["singular_values"], b["singular_values"])) < 1e-3 * a["singular_values"][0]


def test_fsdp_checkpoint_is_one_model_safetensors_that_transformers_loads(runs):
    from transformers import AutoModelForCausalLM
    folder = runs["fsdp"] / "checkpoints" / f"step-{STEPS:06d}"
    assert (folder / "model.safetensors").is_file() and (folder / "config.json").is_file()
    assert not list(folder.glob("model-*.safetensors"))  # consolidated, not one file per rank
    assert (folder / "optimizer" / ".metadata").is_file()  # the sharded optimizer state (torch.distributed.checkpoint)
    model = AutoModelForCausalLM.from_pretrained(folder)
    ddp_weights = load_file(str(runs["none"] / "checkpoints" / f"step-{STEPS:06d}" / "model.safetensors"))
    for name, tensor in model.state_dict().items():
        assert torch.allclose(tensor, ddp_weights[name], atol=1e-5), name


def test_fsdp_stop_and_resume_reach_the_uninterrupted_losses(runs, tmp_path):
    run_dir = write_run(tmp_path / "resumed", "fsdp")
    launch(run_dir, stop_after=2)
    assert json.loads((run_dir / "status.json").read_text())["state"] == "stopped"
    launch(run_dir, "--resume")
    events = assert_valid_run_files(run_dir)
    assert [e["resumed_from"] for e in of_type(events, "run_started")] == [None, 2]
    assert [e["status"] for e in of_type(events, "run_finished")] == ["stopped", "completed"]
    losses = {e["step"]: e["loss"] for e in of_type(events, "train")}
    straight = {e["step"]: e["loss"] for e in of_type(assert_valid_run_files(runs["fsdp"]), "train")}
    assert sorted(losses) == [1, 2, 3, 4]
    for step in (3, 4):  # trained after the resume: weights and AdamW moments came back
        assert abs(losses[step] - straight[step]) < 1e-5, (step, losses[step], straight[step])


def test_fsdp_in_bf16_true_with_gradient_checkpointing(runs, tmp_path):
    """What a 7B full finetune on a few GPUs runs: sharded, bf16 weights and optimizer states,
    activations recomputed. Losses near fp32's; the checkpoint keeps bf16."""
    run_dir = write_run(tmp_path / "bf16", "fsdp", evals={"every_steps": 50}, spectra={"every_steps": 0},
                        train={**TRAIN, "steps": 2, "precision": "bf16-true", "gradient_checkpointing": True})
    launch(run_dir)
    events = assert_valid_run_files(run_dir)
    assert of_type(events, "run_started")[0]["precision"] == "bf16-true"
    fp32 = of_type(assert_valid_run_files(runs["fsdp"]), "train")
    for a, b in zip(of_type(events, "train"), fp32[:2], strict=True):
        assert abs(a["loss"] - b["loss"]) < 2e-2, (a, b)
    weights = load_file(str(run_dir / "checkpoints" / "step-000002" / "model.safetensors"))
    assert {t.dtype for t in weights.values()} == {torch.bfloat16}
