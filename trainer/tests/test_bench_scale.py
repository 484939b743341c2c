"""trainer/bench/bench_scale.py, the harness behind gpu.sh and the CPU comparison: its FLOPs
count, its refusal without CUDA, and a whole run of it on builtin:tiny (ours and Hugging Face
Trainer + PEFT, LoRA and full), so the one call on a lent GPU does not fail on the harness."""

import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import TRAINER

sys.path.insert(0, str(TRAINER / "bench"))
import bench_scale  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": str(TRAINER)}


def test_flops_per_token_is_6n_plus_attention_for_full_and_4n_plus_2_trainable_for_lora():
    d = {"layers": 2, "attn_width": 64, "vocab": 100, "hidden": 64, "tied": False}
    n, trainable, seq = 1_000_000, 10_000, 128
    attention = 12 * 2 * 64 * seq
    assert bench_scale.flops_per_token(d, n, n, "full", seq) == 6 * (n - 6400) + attention
    assert bench_scale.flops_per_token(d, n, trainable, "lora", seq) == 4 * (n - 6400) + 2 * trainable + attention
    tied = {**d, "tied": True}  # the embedding is the head's weight: it multiplies
    assert bench_scale.flops_per_token(tied, n, n, "full", seq) == 6 * n + attention
    assert bench_scale.peak_flops("NVIDIA H100 80GB HBM3") == 989e12
    assert bench_scale.peak_flops("NVIDIA H200") == 989e12
    assert bench_scale.peak_flops("NVIDIA H100 PCIe") == 756e12
    assert bench_scale.peak_flops("Some Future GPU") is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_gpu_script_stops_at_once_without_cuda():
    proc = subprocess.run(["bash", str(TRAINER / "bench" / "gpu.sh")], env=ENV, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1
    assert "no CUDA GPU: torch.cuda.is_available() is False" in proc.stderr
    assert "--device cpu" in proc.stderr


def test_the_harness_end_to_end_on_tiny(tmp_path):
    proc = subprocess.run([sys.executable, str(TRAINER / "bench" / "bench_scale.py"), "--device", "cpu", "--smoke",
                           "--threads", "1", "--out", str(tmp_path)], env=ENV, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    [report] = list(tmp_path.glob("scale-*-cpu-smoke.json"))
    payload = json.loads(report.read_text())
    assert {(c["model"], c["method"]) for c in payload["comparisons"]} == {("builtin:tiny", "full"), ("builtin:tiny", "lora")}
    for c in payload["comparisons"]:
        assert c["ours_tokens_per_s"] > 0 and c["hf_tokens_per_s"] > 0 and c["ratio"] > 0
        assert c["ours_peak_gib"] > 0 and c["hf_peak_gib"] > 0
    by_label = {r["label"]: r for r in payload["results"]}
    lora_ours, lora_hf = by_label["ours builtin:tiny lora fp32"], by_label["hf builtin:tiny lora fp32"]
    # the same model and adapters on both sides: LoRA r16 on every linear layer
    assert lora_ours["params_total"] == lora_hf["params_total"]
    assert lora_ours["params_trainable"] == lora_hf["params_trainable"] < lora_ours["params_total"]
    assert all(r["ok"] and r["losses_finite"] for r in payload["results"])
    assert "| builtin:tiny | full | fp32 |" in (tmp_path / report.name.replace(".json", ".md")).read_text()


def test_checks_say_where_memory_must_drop():
    def ours(peak, **kw):
        case = bench_scale.Case("ours", "builtin:350m", "full", **kw)
        return bench_scale.Result(case, True, peak_mib=peak, losses_finite=True, last_loss=2.0,
                                  tokens_per_s=1.0, extra={"precision_reported": case.precision})
    results = [ours(1000), ours(600, precision="bf16-true"), ours(1200, gc=True)]
    got = {c["check"]: c["ok"] for c in bench_scale.checks(results)}
    assert got["builtin:350m full: bf16-true peak memory below bf16-mixed"] is True
    assert got["builtin:350m full: gradient checkpointing lowers peak memory"] is False  # 1200 is not below 1000
    assert all(ok for name, ok in got.items() if "losses finite" in name or "run_started.precision" in name)
