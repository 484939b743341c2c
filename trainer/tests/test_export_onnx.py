"""export-onnx: base, LoRA (merged) and full checkpoints of builtin:tiny runs, checked against
schemas/export.schema.json and against PyTorch's logits with onnxruntime."""

import json

import jsonschema
import numpy as np
import onnxruntime as ort
import pytest
import torch
import yaml

from conftest import PRETRAIN_STEPS, base_config, schema
from test_hf_model import hf_folder  # noqa: F401 (a fixture: a tiny Llama with a BPE tokenizer)

from finetune_lab.__main__ import main
from finetune_lab.export_onnx import ExportError, export_run
from finetune_lab.train import run


def make_trained_run(root, name, **overrides):
    run_dir = root / name
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(yaml.safe_dump(base_config(**overrides)))
    assert run(run_dir) == 0
    return run_dir


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory):
    """LoRA on arithmetic (instruction format), checkpoints at steps 2 and 4."""
    return make_trained_run(tmp_path_factory.mktemp("export"), "lora-run",
                            data={"train": "builtin:arithmetic", "format": "instruction", "seq_len": 48})


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    return make_trained_run(tmp_path_factory.mktemp("export"), "full-run", method="full",
                            train={"steps": 2, "batch_size": 2, "warmup_steps": 1, "lr": 1e-3},
                            checkpoint={"every_steps": 2, "keep_last": 1})


def read_manifest(path):
    manifest = json.loads(path.read_text())
    jsonschema.validate(manifest, schema("export"))
    return manifest


def onnx_logits(manifest_path, input_ids):
    manifest = json.loads(manifest_path.read_text())
    session = ort.InferenceSession(str(manifest_path.parent / manifest["onnx"]), providers=["CPUExecutionProvider"])
    return session.run([manifest["output_name"]], {manifest["input_name"]: input_ids.numpy()})[0]


def torch_logits(model, input_ids):
    model.eval()
    with torch.no_grad():
        return model(input_ids=input_ids).logits.numpy()


def base_model():
    from finetune_lab.pretrain import pretrained_builtin
    return pretrained_builtin("tiny", steps=PRETRAIN_STEPS)


# batch and length unlike the exporter's example (2, 8) and the parity input (1, 16): dynamic axes
INPUT = torch.randint(0, 259, (3, 21), generator=torch.Generator().manual_seed(0))


def test_base_export_from_the_command_line(lora_run, capfd):
    stale = lora_run / "exports" / "base" / "stale.txt"  # a previous export of the same label
    stale.parent.mkdir(parents=True)
    stale.write_text("old")
    capfd.readouterr()
    assert main(["export-onnx", "--run-dir", str(lora_run), "--checkpoint", "base"]) == 0
    out, err = capfd.readouterr()  # file descriptors: the exporter's own log lines would show here
    assert err == ""
    lines = [json.loads(line) for line in out.splitlines()]  # every line is JSON
    path = lora_run / "exports" / "base" / "export.json"
    assert lines[-1]["export"] == str(path) and lines[-1]["kind"] == "base"

    manifest = read_manifest(path)
    assert (manifest["label"], manifest["kind"], manifest["checkpoint"], manifest["step"]) == ("base", "base", None, 0)
    assert manifest["run"] == "lora-run" and manifest["base"] == "builtin:tiny" and manifest["lora"] is None
    assert manifest["tokenizer"] == {"kind": "bytes", "bos_token_id": 256, "eos_token_id": 257, "pad_token_id": 258}
    assert manifest["prompt_format"] == {"format": "instruction", "template": "Question: {prompt}\nAnswer:"}
    assert manifest["vocab_size"] == 259 and manifest["max_positions"] == 1024 and manifest["opset"] >= 17
    assert 0 <= manifest["parity"]["max_abs_diff"] < 1e-4 and manifest["parity"]["tokens"] == 16
    assert manifest["onnx_bytes"] == (path.parent / "model.onnx").stat().st_size
    assert sorted(p.name for p in path.parent.iterdir()) == ["export.json", "model.onnx"]
    assert not [p for p in (lora_run / "exports").iterdir() if p.name.startswith(".")]  # no temp folders left

    np.testing.assert_allclose(onnx_logits(path, INPUT), torch_logits(base_model(), INPUT), atol=1e-4)


def test_lora_checkpoint_is_merged_and_matches_peft(lora_run):
    from peft import PeftModel
    path = export_run(lora_run)  # default: the newest checkpoint
    manifest = read_manifest(path)
    assert (manifest["label"], manifest["kind"], manifest["checkpoint"], manifest["step"]) == \
        ("step-000004", "lora", "step-000004", 4)
    assert manifest["lora"]["rank"] == 4 and manifest["lora"]["alpha"] == 8
    assert any(m.endswith("q_proj") for m in manifest["lora"]["target_modules"])

    peft_model = PeftModel.from_pretrained(base_model(), lora_run / "checkpoints" / "step-000004")
    got = onnx_logits(path, INPUT)
    np.testing.assert_allclose(got, torch_logits(peft_model, INPUT), atol=1e-4)
    assert np.abs(got - torch_logits(base_model(), INPUT)).max() > 1e-3  # the adapter changed something


def test_full_checkpoint_export(full_run):
    from transformers import AutoModelForCausalLM
    path = export_run(full_run, "step-2")  # short step names are accepted
    manifest = read_manifest(path)
    assert (manifest["label"], manifest["kind"], manifest["step"], manifest["lora"]) == ("step-000002", "full", 2, None)
    assert manifest["prompt_format"] == {"format": "text"}
    tuned = AutoModelForCausalLM.from_pretrained(full_run / "checkpoints" / "step-000002")
    got = onnx_logits(path, INPUT)
    np.testing.assert_allclose(got, torch_logits(tuned, INPUT), atol=1e-4)
    assert np.abs(got - torch_logits(base_model(), INPUT)).max() > 1e-3


def test_hf_model_exports_its_tokenizer(hf_folder, tmp_path):  # noqa: F811
    from transformers import AutoTokenizer
    run_dir = make_trained_run(tmp_path, "hf-run", model={"base": f"hf:{hf_folder}"},
                               train={"steps": 2, "batch_size": 2, "warmup_steps": 1, "lr": 1e-3},
                               checkpoint={"every_steps": 2, "keep_last": 1})
    manifest = read_manifest(export_run(run_dir))
    tok = AutoTokenizer.from_pretrained(hf_folder)
    assert manifest["kind"] == "lora" and manifest["max_positions"] == 128 and manifest["vocab_size"] == len(tok)
    assert manifest["tokenizer"] == {"kind": "hf", "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id,
                                     "pad_token_id": tok.pad_token_id, "file": "tokenizer.json"}
    saved = AutoTokenizer.from_pretrained(run_dir / "exports" / "step-000002")
    assert saved("def add(a, b):")["input_ids"] == tok("def add(a, b):")["input_ids"]
    assert manifest["parity"]["max_abs_diff"] < 1e-4


def test_missing_checkpoint_lists_the_existing_ones(lora_run, tmp_path, capsys):
    assert main(["export-onnx", "--run-dir", str(lora_run), "--checkpoint", "step-99"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: no checkpoint 'step-99'")
    assert "step-000002, step-000004" in err
    assert not (lora_run / "exports" / "step-000099").exists()
    with pytest.raises(ExportError, match="no run folder"):
        export_run(tmp_path / "missing")
    (tmp_path / "fresh").mkdir()
    (tmp_path / "fresh" / "config.yaml").write_text(yaml.safe_dump(base_config()))
    with pytest.raises(ExportError, match="no checkpoints yet.*--checkpoint base"):
        export_run(tmp_path / "fresh")
