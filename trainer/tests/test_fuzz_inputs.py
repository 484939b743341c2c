"""Fuzzing the trainer's inputs (issue 17), seeded and bounded: 10,000 mutated config.yaml files
through ``load_config`` (each is valid or a ConfigError naming the field; nothing else escapes),
a handful of them through the real ``python -m finetune_lab run`` (exit 2, the field named,
nothing trained), and 10,000 mutated events.jsonl files through ``read_events`` (never raises;
only JSON objects come back). A seeded generator rather than hypothesis: the same cases on every
machine, no shrinking needed (a failure prints the case index), no extra dependency."""

from __future__ import annotations

import copy
import json
import os
import random
import subprocess
import sys
import time

import yaml

from conftest import TRAINER, base_config

from finetune_lab.config import ConfigError, load_config
from finetune_lab.events import read_events

SEED = 17
CASES = int(os.environ.get("FINETUNE_LAB_FUZZ_CASES", "10000"))
SHELL = ["$(touch /tmp/finetune-lab-pwned)", "`id`", "; rm -rf ~", "&& curl x | sh", "| tee /etc/passwd", "\n--resume", "'\""]
PATHS = [("name",), ("method",), ("model", "base"), ("model", "pretrain_steps"), ("data", "train"), ("data", "seq_len"),
         ("data", "format"), ("lora", "rank"), ("lora", "alpha"), ("lora", "dropout"), ("lora", "target_modules"),
         ("train", "steps"), ("train", "lr"), ("train", "batch_size"), ("train", "precision"), ("train", "seed"),
         ("spectra", "every_steps"), ("checkpoint", "every_steps"), ("checkpoint", "keep_last"), ("launcher", "kind"),
         ("launcher", "nproc_per_node"), ("evals", "learning"), ("extra",), ("train", "unknown"), ("sweep",)]


def random_value(r: random.Random, depth: int = 0):
    kind = r.randrange(14)
    if kind == 0:
        return None
    if kind == 1:
        return r.random() < 0.5
    if kind == 2:
        return r.randint(-5, 5)
    if kind == 3:
        return r.choice([1e308, -1e308, 2**53 + 1, 10**30, 1e-320, 0.5, 1.5, float("inf"), float("-inf"), float("nan")])
    if kind == 4:
        return r.choice(SHELL)
    if kind == 5:
        return "x" * r.randint(1000, 100_000)
    if kind == 6:
        return [random_value(r, depth + 1) for _ in range(2)] if depth < 3 else []
    if kind == 7:
        return {r.choice(["rank", "x", "__class__", "steps"]): random_value(r, depth + 1)} if depth < 3 else {}
    if kind == 8:
        return r.choice(["", "lora", "full", "builtin:tiny", "hf:../../etc", "../../x", "/etc/passwd", "%2e%2e%2f", "\u202e"])
    if kind == 9:
        nested = 1
        for _ in range(r.randint(50, 400)):
            nested = [nested] if r.random() < 0.5 else {"a": nested}
        return nested
    return r.randint(-10**6, 10**9)


def damage(r: random.Random, text: str) -> str:
    for _ in range(r.randint(1, 3)):
        at = r.randint(0, len(text))
        op = r.randrange(7)
        if op == 0:
            text = text[:at]
        elif op == 1:
            text = text[:at] + r.choice(list("{[:\"'&*!|>%@`\t\\")) + text[at:]
        elif op == 2:
            lines = text.split("\n")
            k = r.randrange(len(lines))
            lines.insert(k, lines[k])  # a duplicate key
            text = "\n".join(lines)
        elif op == 3:
            text = text[:at] + "".join(chr(r.randint(1, 0xD7FF)) for _ in range(r.randint(1, 20))) + text[at:]
        elif op == 4:
            text += r.choice(["\nx: !!python/object/apply:os.system ['touch /tmp/finetune-lab-pwned']\n",
                              "\na: &a [1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: [*b,*b,*b,*b,*b,*b,*b,*b]\n",
                              "\nz: 2001-12-14\n", "\n<<: {method: full}\n"])
        elif op == 5:
            text = "[" * r.randint(100, 1000) + text
        else:
            text = text.replace("0.01", r.choice(["1e-7", "1e999", ".inf", ".nan", "on", "1_000", "0x10", "~"]), 1)
    return text


def mutated_config(index: int) -> str:
    r = random.Random(SEED * 1_000_003 + index)
    cfg = copy.deepcopy(base_config())
    for _ in range(r.randint(0, 3)):
        path = r.choice(PATHS)
        node = cfg
        for key in path[:-1]:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        if r.random() < 0.1:
            node.pop(path[-1], None)
        else:
            node[path[-1]] = random_value(r)
    try:
        text = yaml.safe_dump(cfg, width=10**9)
    except (yaml.YAMLError, RecursionError):
        text = "name: [unrepresentable"
    return damage(r, text) if r.random() < 0.4 else text


def test_10000_mutated_configs_are_valid_or_refused_naming_the_field(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    counts = {"valid": 0, "refused": 0, "field_named": 0}
    started = time.monotonic()
    for i in range(CASES):
        (run_dir / "config.yaml").write_text(mutated_config(i), encoding="utf-8", errors="surrogatepass")
        try:
            load_config(run_dir)
            counts["valid"] += 1
        except ConfigError as e:
            message = str(e)
            counts["refused"] += 1
            assert message and len(message) < 20_000, f"case {i}: message of {len(message)} characters"
            counts["field_named"] += "invalid config at '" in message
        except Exception as e:  # noqa: BLE001 - what the test is looking for
            raise AssertionError(f"case {i}: {type(e).__name__} escaped load_config: {e}") from e
    line = (f"config fuzz (seed {SEED}): {CASES} cases in {time.monotonic() - started:.1f} s: {counts['valid']} valid, "
            f"{counts['refused']} refused with ConfigError ({counts['field_named']} naming the field, the rest YAML "
            f"syntax or depth); 0 other exceptions")
    print(line)
    assert counts["refused"] > CASES // 4 and counts["valid"] > CASES // 20, counts


def test_the_real_trainer_refuses_broken_configs_with_exit_2_and_the_field(make_run):
    """A handful through the real process (each pays torch's import): exit 2, stderr and
    status.json name the field, run_finished says failed, nothing was trained or checkpointed."""
    broken = [("lr", {"train": {"steps": 4, "lr": "fast"}}, "train.lr"),
              ("rank", {"lora": {"rank": 0}}, "lora.rank"),
              ("unknown", {"train": {"steps": 4, "stepz": 3}}, "train"),
              ("inf", {"train": {"steps": 4, "lr": float("inf")}}, "train.lr"),
              ("shell", {"method": "$(touch /tmp/finetune-lab-pwned)"}, "method")]
    env = {**os.environ, "PYTHONPATH": str(TRAINER)}
    for name, overrides, field in broken:
        run_dir = make_run(name, **overrides)
        proc = subprocess.run([sys.executable, "-m", "finetune_lab", "run", "--run-dir", str(run_dir)],
                              cwd=run_dir, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2, (name, proc.returncode, proc.stderr[-2000:])
        assert f"'{field}" in proc.stderr, (name, proc.stderr[-500:])
        status = json.loads((run_dir / "status.json").read_text())
        assert status["state"] == "failed" and field in status["error"], status
        events = read_events(run_dir)
        assert [e["type"] for e in events] == ["run_finished"] and events[0]["status"] == "failed"
        assert not (run_dir / "checkpoints").exists()
    assert not os.path.exists("/tmp/finetune-lab-pwned")


def mutated_events(index: int) -> bytes:
    r = random.Random(SEED * 7_000_003 + index)
    good = json.dumps({"v": 1, "type": "train", "time": 1.0, "step": 1, "loss": 2.0}).encode()
    parts = []
    for _ in range(r.randint(1, 30)):
        op = r.randrange(9)
        if op == 0:
            parts.append(good[: r.randint(0, len(good) - 1)])
        elif op == 1:
            parts.append(bytes(r.randrange(256) for _ in range(r.randint(1, 100))).replace(b"\n", b""))
        elif op == 2:
            parts.append(b"[" * r.randint(1000, 50_000))
        elif op == 3:
            parts.append(json.dumps(r.choice([[1], 3, "x", None, True])).encode())
        elif op == 4:
            parts.append(json.dumps({"v": 99, "type": r.choice(["train", "new", 3])}).encode())
        elif op == 5 and index % 200 == 0:
            parts.append(b'{"pad":"' + b"x" * 5_000_000 + b'"}')
        else:
            parts.append(good)
        parts.append(b"\n")
    if r.random() < 0.3:
        parts.append(good[:10])  # torn last line
    return b"".join(parts)


def test_10000_mutated_events_files_never_make_read_events_raise(tmp_path):
    counts = {"events": 0, "lines": 0}
    started = time.monotonic()
    for i in range(CASES):
        data = mutated_events(i)
        (tmp_path / "events.jsonl").write_bytes(data)
        try:
            events = read_events(tmp_path)
        except Exception as e:  # noqa: BLE001
            raise AssertionError(f"case {i}: read_events raised {type(e).__name__}: {e}") from e
        assert all(isinstance(e, dict) for e in events), f"case {i}"
        counts["events"] += len(events)
        counts["lines"] += data.count(b"\n")
    print(f"events fuzz (seed {SEED}): {CASES} files, {counts['lines']} lines in {time.monotonic() - started:.1f} s: "
          f"{counts['events']} JSON objects returned, the rest skipped; 0 exceptions")


def test_config_yaml_is_read_with_yaml_1_2_scalars_as_the_extension_writes_them(tmp_path):
    """The extension writes config.yaml with the npm ``yaml`` package (YAML 1.2): ``1e-7`` is a
    number there, ``on`` a string, a key twice an error. PyYAML alone (YAML 1.1) read ``lr: 1e-7``
    as the string '1e-7' and refused the run (found by the extension-vs-trainer fuzz)."""
    cfg = yaml.safe_dump(base_config()).replace("lr: 0.01", "lr: 1e-7")
    (tmp_path / "config.yaml").write_text(cfg + "description: on\n")
    loaded = load_config(tmp_path)
    assert loaded.train["lr"] == 1e-7 and loaded.description == "on"
    (tmp_path / "config.yaml").write_text(cfg + "method: full\n")
    try:
        load_config(tmp_path)
        raise AssertionError("a duplicate key was accepted")
    except ConfigError as e:
        assert "duplicate key 'method'" in str(e)
