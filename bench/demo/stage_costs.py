"""Per-run costs from a runs folder's events (the demo's or the LR scan's):

    .venv/bin/python bench/demo/stage_costs.py .finetune/runs [name-prefix]

Per run: steps, wall seconds (run_started -> run_finished), startup seconds (the previous run's
run_finished, or meta created for the first, -> run_started: process start, torch import, base
load, data), median train tokens/s, evals (count and
seconds), spectra seconds. Wall time depends on the machine's load; tokens/s less so.
"""
import json
import statistics
import sys
from pathlib import Path

root = Path(sys.argv[1])
prefix = sys.argv[2] if len(sys.argv) > 2 else ""
print(f"{'run':55s} {'steps':>5s} {'wall':>6s} {'start':>6s} {'tok/s':>7s} {'p90':>7s} {'evals':>9s} {'spectra':>8s} {'idle est':>8s}")
runs = []
for d in (p for p in root.iterdir() if p.is_dir() and p.name.startswith(prefix)):
    f = d / "events.jsonl"
    if f.exists():
        ev = [json.loads(l) for l in f.read_text().splitlines() if l.strip()]
        runs.append((next((e["time"] for e in ev if e["type"] == "run_started"), 0), d, ev))
prev_end = None
total_wall = 0.0
total_est = 0.0
for _, d, ev in sorted(runs, key=lambda r: r[0]):
    meta = json.loads((d / "meta.json").read_text()) if (d / "meta.json").exists() else {}
    start = next((e["time"] for e in ev if e["type"] == "run_started"), None)
    end = next((e["time"] for e in ev if e["type"] == "run_finished"), None)
    created = meta.get("created")
    tps = [e["tokens_per_s"] for e in ev if e["type"] == "train" and e.get("tokens_per_s")]
    eval_s = spec_s = 0.0
    n_eval = 0
    prev = start
    for e in ev:
        if e["type"] == "eval":
            eval_s += e["time"] - prev; n_eval += 1
        if e["type"] == "spectrum":
            spec_s += e["time"] - prev
        if e["type"] in ("train", "eval", "spectrum", "run_started"):
            prev = e["time"]
    steps = max((e["step"] for e in ev if e["type"] == "train"), default=0)
    tokens = max((e.get("tokens") or 0 for e in ev if e["type"] == "train"), default=0)
    p90 = sorted(tps)[int(0.9 * (len(tps) - 1))] if tps else 0
    # Idle-machine estimate: training at the 90th-percentile rate (the undisturbed stretches),
    # plus evals, spectra and startup as measured.
    est = tokens / p90 + eval_s + spec_s if p90 else 0
    wall = f"{end - start:.0f}" if start and end else "-"
    origin = prev_end if prev_end else created
    startup = f"{start - origin:.0f}" if start and isinstance(origin, (int, float)) else "-"
    if start and end:
        total_wall += end - (origin or start)
    prev_end = end
    print(f"{d.name[:55]:55s} {steps:5d} {wall:>6s} {startup:>6s} {statistics.median(tps) if tps else 0:7.0f} "
          f"{p90:7.0f} {n_eval:3d} {eval_s:5.1f}s {spec_s:7.1f}s {est + (start - origin if start and origin else 0):7.0f}s")
    total_est += est + (start - origin if start and origin else 0)
print(f"sum of run walls incl. startups: {total_wall:.0f}s; idle-machine estimate: {total_est:.0f}s")
