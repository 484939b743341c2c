"""ONNX export of a run's base model or one of its checkpoints, for the playground.

``python -m finetune_lab export-onnx --run-dir DIR [--checkpoint base|step-N]`` writes
``DIR/exports/<label>/``: ``model.onnx`` (input_ids int64 [batch, sequence] -> logits float32
[batch, sequence, vocab], no KV cache), ``export.json`` (schemas/export.schema.json) and, for
``hf:`` models, ``tokenizer.json``. LoRA checkpoints are merged into the base first (PEFT's
``merge_and_unload``: W + s·B·A), so every export is one plain causal LM graph.

The folder is written as ``exports/.tmp-<label>-<pid>`` and renamed into place, so a reader
never sees half an export; re-exporting a label replaces it.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import shutil
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import torch

from .checkpoint import list_checkpoints, step_dir_name
from .paths import data_base_dir

EXPORTS = "exports"
ONNX_FILE = "model.onnx"
OPSET = 18  # the dynamo exporter's native opset; onnxruntime(-node) >= 1.14 runs it
PARITY_TOKENS = 16
PARITY_TOLERANCE = 1e-3  # max |logit difference|, PyTorch vs onnxruntime, both fp32 on CPU
PARITY_TEXT = "def add(a, b):\n    return a + b\n"
# Instruction templates the trainer's data produces (data.py: builtin:arithmetic's
# "Question: ...\nAnswer:", chat rows flattened to "User: ...\nAssistant:"). One is recorded
# only when every training prompt is wrapped in it; free-form prompt/response rows get none.
TEMPLATES = ["Question: {prompt}\nAnswer:", "User: {prompt}\nAssistant:"]


class ExportError(RuntimeError):
    """A one-line message for the user: what is wrong and what to do."""


class LogitsOnly(torch.nn.Module):
    """forward(input_ids (B, T) int64) -> logits (B, T, V): the whole graph the playground runs.
    No attention mask (no padding in the playground) and no KV cache (use_cache=False)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, use_cache=False).logits


# ---------------------------------------------------------------------------- what to export

def resolve_checkpoint(run_dir: Path, checkpoint: str | None) -> tuple[str, Path | None]:
    """The export's label and checkpoint folder: ("base", None), or ("step-000100", folder).
    ``checkpoint`` None means the newest complete checkpoint; "step-100" and "step-000100"
    name the same one."""
    found = list_checkpoints(run_dir)
    if checkpoint == "base":
        return "base", None
    if checkpoint is None:
        if not found:
            raise ExportError(f"run {run_dir.name} has no checkpoints yet; export the base with --checkpoint base")
        return found[-1].name, found[-1]
    match = re.fullmatch(r"step-(\d+)", checkpoint)
    label = step_dir_name(int(match.group(1))) if match else checkpoint
    for folder in found:
        if folder.name == label:
            return label, folder
    have = ", ".join(f.name for f in found) or "none"
    raise ExportError(f"no checkpoint '{checkpoint}' in run {run_dir.name} (checkpoints: {have}; or 'base')")


def load_model(cfg, checkpoint: Path | None, progress=lambda info: None):
    """The weights to export, in fp32 on CPU, with the run's tokenizer.

    Returns:
        (model, tokenizer, kind "base" | "lora" | "full", lora settings dict or None)
    """
    from .model import load_base
    base = cfg.model["base"]

    stdout = sys.stdout

    def on_pretrain(step, total, loss, cached):  # a built-in base missing from the cache
        if not cached:
            with contextlib.redirect_stdout(stdout):
                progress({"phase": "pretraining", "step": step, "steps": total})
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pretrain's own text lines: stdout is JSON
            model, tokenizer = load_base(base, cfg.model.get("pretrain_steps"), on_pretrain)
    except OSError as e:
        raise ExportError(f"cannot load model.base {base}: {e}".splitlines()[0]) from e
    if checkpoint is None:
        return model, tokenizer, "base", None
    if (checkpoint / "adapter_config.json").exists():
        if not (checkpoint / "adapter_model.safetensors").exists():  # PEFT would fall back to a pickled .bin
            raise ExportError(f"checkpoint {checkpoint.name} has no adapter_model.safetensors (pickled weights are not loaded)")
        from peft import PeftModel
        with warnings.catch_warnings():  # transformers 5 deprecation noise from inside peft
            warnings.simplefilter("ignore", FutureWarning)
            peft_model = PeftModel.from_pretrained(model, checkpoint)
        adapter = peft_model.peft_config["default"]
        targets = adapter.target_modules
        lora = {"rank": int(adapter.r), "alpha": float(adapter.lora_alpha),
                "target_modules": [targets] if isinstance(targets, str) else sorted(targets)}
        return peft_model.merge_and_unload(), tokenizer, "lora", lora
    if (checkpoint / "model.safetensors").exists():
        from safetensors.torch import load_file
        missing, unexpected = model.load_state_dict(load_file(str(checkpoint / "model.safetensors")), strict=False)
        if unexpected or [k for k in missing if "lm_head" not in k]:  # lm_head: tied to the embeddings
            raise ExportError(f"checkpoint {checkpoint.name} does not fit model.base {base}")
        return model, tokenizer, "full", None
    raise ExportError(f"checkpoint {checkpoint.name} holds neither a PEFT adapter nor model.safetensors")


def prompt_format(cfg, run_dir: Path) -> dict:
    """How the run's data showed prompts: {"format": "text"} or {"format": "instruction",
    "template": ...} when one of TEMPLATES wraps every training prompt."""
    if cfg.data["format"] != "instruction":
        return {"format": "text"}
    from .data import load_examples
    try:
        # the same relative-path rule as training
        prompts = [ex["prompt"] for ex in load_examples(cfg.data["train"], data_base_dir(run_dir))]
    except (OSError, ValueError):
        return {"format": "instruction"}  # data moved since training: the format is still known
    for template in TEMPLATES:
        head, tail = template.split("{prompt}")
        if prompts and all(p.startswith(head) and p.endswith(tail) and len(p) > len(head) + len(tail)
                           for p in prompts):
            return {"format": "instruction", "template": template}
    return {"format": "instruction"}


def tokenizer_entry(tokenizer, folder: Path) -> dict:
    """The manifest's tokenizer; an ``hf:`` tokenizer is saved into ``folder`` (tokenizer.json)."""
    ids = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
           "pad_token_id": tokenizer.pad_token_id}
    if getattr(tokenizer, "tok", None) is None:  # ByteTokenizer
        return {"kind": "bytes", **ids}
    tokenizer.tok.save_pretrained(folder)
    if not (folder / "tokenizer.json").exists():
        raise ExportError(f"the tokenizer of {tokenizer.name} has no fast (tokenizer.json) form, "
                          f"which the playground needs")
    return {"kind": "hf", **ids, "file": "tokenizer.json"}


# ---------------------------------------------------------------------------- the graph

def require_onnx() -> None:
    """Fail early, with the install line, when the exporter's packages are missing."""
    missing = []
    for name in ("onnx", "onnxscript"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ExportError(f"ONNX export needs {' and '.join(missing)}: "
                          f"pip install -r trainer/requirements.txt (or pip install onnx onnxscript onnxruntime)")


def export_graph(model: torch.nn.Module, path: Path) -> None:
    """Write ``model`` as ONNX at ``path`` with dynamic batch and sequence axes.

    torch.onnx's dynamo exporter (torch.export + onnxscript): the legacy TorchScript exporter
    (dynamo=False) fails on transformers 5's Llama ("Exporting the operator 'aten::diff' to
    ONNX opset 17 is not supported", in the causal-mask code; torch 2.15, transformers 5.23),
    while dynamo exports it with logits within 1e-6 of PyTorch for every batch and length
    tried. Its output is byte-identical across runs for the same weights. optimize=False:
    onnxscript's graph optimizer took ~40% of the export's time (builtin:small: 11 s of CPU vs
    6.6 s) for no speed-up at run time, since onnxruntime (onnxruntime-node too) fuses the graph
    itself when it loads it (15 ms per 256-token forward either way); the file is ~1 MB larger.
    """
    wrapped = LogitsOnly(model).eval()
    # batch 2, not 1: torch.export specialises a size-1 example dimension to a constant
    example = torch.zeros((2, 8), dtype=torch.long)
    shapes = {"input_ids": {0: torch.export.Dim("batch"), 1: torch.export.Dim("sequence")}}
    big = sum(p.numel() * p.element_size() for p in model.parameters()) > 1 << 30  # protobuf's 2 GB cap
    quiet_logger = logging.getLogger("torch.onnx")  # "torchvision is not installed" warnings
    level = quiet_logger.level
    quiet_logger.setLevel(logging.ERROR)
    try:
        with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(wrapped, (example,), str(path), input_names=["input_ids"],
                              output_names=["logits"], dynamic_shapes=shapes, opset_version=OPSET,
                              dynamo=True, external_data=big, optimize=False, verbose=False)
    except Exception as e:
        raise ExportError(f"torch.onnx.export failed: {type(e).__name__}: {e}".splitlines()[0]) from e
    finally:
        quiet_logger.setLevel(level)


def parity_input(tokenizer) -> torch.Tensor:
    """A fixed (1, PARITY_TOKENS) prompt: bos + a line of code, repeated to length."""
    ids = [tokenizer.bos_token_id] + tokenizer.encode(PARITY_TEXT)
    ids = (ids * PARITY_TOKENS)[:PARITY_TOKENS]
    return torch.tensor([ids], dtype=torch.long)


def check_parity(model: torch.nn.Module, path: Path, input_ids: torch.Tensor) -> dict | None:
    """Largest |logit difference| between PyTorch and onnxruntime on ``input_ids``; None when
    onnxruntime is not installed. Raises ExportError above PARITY_TOLERANCE."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    with torch.no_grad():
        expected = LogitsOnly(model).eval()(input_ids).numpy()
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    got = session.run(["logits"], {"input_ids": input_ids.numpy()})[0]
    if got.shape != expected.shape:
        raise ExportError(f"ONNX logits have shape {got.shape}, PyTorch {expected.shape}")
    diff = float(abs(got - expected).max())
    if not diff <= PARITY_TOLERANCE:
        raise ExportError(f"ONNX and PyTorch logits differ by {diff:.3g} (tolerance {PARITY_TOLERANCE}); "
                          f"the export is not trustworthy")
    return {"max_abs_diff": diff, "tokens": int(input_ids.shape[1])}


# ---------------------------------------------------------------------------- the export

def export_run(run_dir: Path | str, checkpoint: str | None = None, on_progress=None) -> Path:
    """Export one model of a run to ``run_dir/exports/<label>/``.

    Args:
        run_dir: the run folder (config.yaml, checkpoints/).
        checkpoint: "base", "step-N", or None for the newest checkpoint.
        on_progress: ``f(dict)`` called with {"phase": ...} as the export goes.
    Returns:
        the path of the written export.json.
    Raises:
        ExportError with a one-line message (no run folder, no such checkpoint, no onnx).
    """
    progress = on_progress or (lambda info: None)
    t0 = time.time()
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ExportError(f"no run folder at {run_dir}")
    if not (run_dir / "config.yaml").exists():
        raise ExportError(f"{run_dir} is not a run folder (no config.yaml)")
    from .config import ConfigError, load_config, load_schema
    try:
        cfg = load_config(run_dir)
    except ConfigError as e:
        raise ExportError(f"{run_dir / 'config.yaml'}: {e}") from e
    label, folder = resolve_checkpoint(run_dir, checkpoint)
    require_onnx()

    progress({"phase": "loading", "label": label})
    model, tokenizer, kind, lora = load_model(cfg, folder, progress)
    model = model.float().cpu().eval()

    exports = run_dir / EXPORTS
    if exports.is_symlink():  # a run folder from a workspace must not point our writes elsewhere
        raise ExportError(f"{exports} is a symbolic link; exports are only written inside the run folder")
    tmp = exports / f".tmp-{label}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        progress({"phase": "exporting", "label": label, "kind": kind})
        export_graph(model, tmp / ONNX_FILE)
        progress({"phase": "parity", "label": label})
        input_ids = parity_input(tokenizer)
        parity = check_parity(model, tmp / ONNX_FILE, input_ids)
        head = model.get_output_embeddings()
        vocab_size = int(head.out_features if head is not None else model.config.vocab_size)
        manifest = {
            "v": 1, "label": label, "kind": kind, "run": run_dir.resolve().name,
            "checkpoint": None if folder is None else folder.name,
            "step": 0 if folder is None else int(folder.name.removeprefix("step-")),
            "base": cfg.model["base"], "lora": lora, "onnx": ONNX_FILE,
            "onnx_bytes": sum(f.stat().st_size for f in tmp.glob(ONNX_FILE + "*")),
            "opset": OPSET, "input_name": "input_ids", "output_name": "logits",
            "vocab_size": vocab_size, "max_positions": max_positions(model.config, cfg),
            "tokenizer": tokenizer_entry(tokenizer, tmp),
            "prompt_format": prompt_format(cfg, run_dir), "parity": parity,
            "torch_version": torch.__version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        import jsonschema
        jsonschema.validate(manifest, load_schema("export"))
        (tmp / "export.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        final = exports / label
        if final.exists():  # re-export: swap the old folder out, the new one in, then delete
            old = exports / f".old-{label}-{os.getpid()}"
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    progress({"phase": "done", "label": label, "seconds": round(time.time() - t0, 2)})
    return final / "export.json"


def max_positions(config, cfg) -> int:
    """The longest sequence the model was built for; GPT-2 style configs call it n_positions."""
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return int(cfg.data["seq_len"])
