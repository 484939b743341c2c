"""Make a run folder with ONNX exports for the TypeScript playground's tests (~30 s on CPU).

Usage (from the repo root):

    .venv/bin/python trainer/scripts/make_export_fixture.py OUTDIR

OUTDIR becomes a runs folder holding one run, ``OUTDIR/tiny-lora/``: builtin:tiny (pretrained
10 steps) finetuned with LoRA (rank 4) for 4 steps on builtin:arithmetic (instruction format),
with meta.json, config.yaml, events.jsonl, status.json, checkpoints/step-000004 and two
exports made by ``python -m finetune_lab export-onnx``: ``exports/base`` and
``exports/step-000004``. Stdout is one JSON object:

    {"runs_dir": ".../OUTDIR", "run_dir": ".../OUTDIR/tiny-lora",
     "exports": {"base": ".../exports/base/export.json", "step-000004": ".../export.json"}}

Progress goes to stderr; exit 1 with one line on stderr when something fails. The pretrained
base is cached in OUTDIR/cache unless FINETUNE_LAB_CACHE is set (the same base is reused by a
second call with the same cache). Everything is seeded, so the weights (and the ONNX files)
are the same on every call on the same machine and library versions.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path

TRAINER = Path(__file__).resolve().parents[1]
RUN_NAME = "tiny-lora"
CONFIG = f"""\
name: {RUN_NAME}
model: {{base: "builtin:tiny", pretrain_steps: 10}}
data: {{train: "builtin:arithmetic", format: instruction, seq_len: 64}}
method: lora
lora: {{rank: 4, alpha: 8, dropout: 0.0}}
train: {{steps: 4, batch_size: 4, warmup_steps: 1, lr: 0.01, seed: 0}}
spectra: {{every_steps: 0}}
checkpoint: {{every_steps: 4, keep_last: 1}}
"""


def make_fixture(out_dir: Path) -> dict:
    """Train the run and export it; returns what main() prints."""
    from finetune_lab.export_onnx import export_run
    from finetune_lab.train import run

    run_dir = out_dir / RUN_NAME
    run_dir.mkdir(parents=True, exist_ok=False)
    (run_dir / "meta.json").write_text(json.dumps({
        "v": 1, "run_id": RUN_NAME, "experiment_name": "export fixture", "experiment_file": None,
        "created": time.time(), "label": "lora r4 (fixture)"}, indent=2) + "\n")
    (run_dir / "config.yaml").write_text(CONFIG)
    with contextlib.redirect_stdout(sys.stderr):  # the trainer's progress lines
        if run(run_dir) != 0:
            raise RuntimeError(f"training the fixture run failed; see {run_dir / 'events.jsonl'}")
    exports = {}
    for checkpoint in ("base", None):  # None: the newest checkpoint (step-000004)
        path = export_run(run_dir, checkpoint, on_progress=lambda info: print(json.dumps(info), file=sys.stderr))
        exports[path.parent.name] = str(path)
    return {"runs_dir": str(out_dir), "run_dir": str(run_dir), "exports": exports}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: make_export_fixture.py OUTDIR", file=sys.stderr)
        return 2
    out_dir = Path(argv[0]).resolve()
    if (out_dir / RUN_NAME).exists():
        print(f"error: {out_dir / RUN_NAME} already exists", file=sys.stderr)
        return 1
    out_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("FINETUNE_LAB_CACHE", str(out_dir / "cache"))
    sys.path.insert(0, str(TRAINER))
    try:
        result = make_fixture(out_dir)
    except Exception as e:  # one line for the calling test's failure message
        print(f"error: {type(e).__name__}: {e}".splitlines()[0], file=sys.stderr)
        return 1
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
