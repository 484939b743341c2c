"""Learning and forgetting scores: the two axes of the paper's Pareto plot.

"LoRA Learns Less and Forgets Less" (Biderman et al., TMLR 2024, arXiv 2405.09673) scores
learning on the target domain (HumanEval, GSM8K) and forgetting on the source domain (mean of
HellaSwag, WinoGrande, ARC-Challenge) relative to the base. Here each task is one of:

- ``loss``: mean next-token loss (nats per token; per byte for the built-in models) over up to
  ``max_examples`` sequences, lower is better. Text data is packed like training
  (``data.PackedText``: documents joined with eos, windows of seq_len + 1, evenly spaced through
  the stream); instruction data (prompt/response) is scored on response tokens only, like
  ``data.InstructionBatches``.
- ``multiple_choice``: the lm-evaluation-harness way (Gao et al., github.com/EleutherAI/
  lm-evaluation-harness): sum of log p(choice tokens | context); accuracy = argmax is the label.
  Also ``accuracy_norm``: the same with the log-likelihood divided by the choice's length in
  bytes (the harness's ``acc_norm``, its headline number for HellaSwag). Data: JSONL rows with
  context/choices/label; or built deterministically: a HellaSwag-like cloze from text (context =
  the previous sentence and the first half of a sentence, choices = its true ending and the
  endings of 3 other sentences); for examples with an ``answer`` (builtin:arithmetic), the true
  response against 3 copies whose answer is replaced by a nearby wrong number.
- ``exact_match``: greedy generation after bos + prompt, up to ``max_new_tokens``; the answer is
  the text after "The answer is" (up to the end of the sentence), else the last number in the
  output; compared with the example's ``answer`` (numbers compared as numbers), like GSM8K.
- ``lm_eval``: an lm-evaluation-harness task, scored by lm-eval itself on the model in memory
  (lmeval.py). The built-in tasks (arithmetic exact match, the clozes) are lm-eval task YAMLs
  in ``tasks/``: the older ``multiple_choice`` / ``exact_match`` types stay for experiment files
  that use them, with their numbers unchanged.
- ``kl_to_base``: mean per-token KL(p_base || p_tuned) on held-out data (kl.py).

Each task's entry carries the seconds it took; a task that raises is reported on its entry
(``error``, value null; its role's aggregate is null at that step) and the others still run.

Aggregates (``learning``, ``forgetting``): the mean of the role's task values; ``delta`` is the
change since the first ``evaluate`` call (step 0, the base), or since ``set_baseline``. When a
role mixes directions (a loss and an accuracy), lower-is-better values are negated before the
mean, so the aggregate is "higher is better" (a documented simplification: the units differ).
"""

from __future__ import annotations

import json
import time
import traceback
from contextlib import nullcontext
from pathlib import Path

import torch

from .eval_items import (  # noqa: F401  (the older types' builders; re-exported for callers of evals)
    _data, _is_text_ref, answers_match, choices_from_examples, cloze_from_texts, extract_answer,
)
from .losses import lm_loss

EVAL_BATCH_TOKENS = 8192  # rows per forward = this // row length: bounds the [B, T, V] logits


# ---------------------------------------------------------------------------- the evaluator

class Evaluator:
    """Scores a model on the experiment's ``evals`` tasks; data is loaded and tokenized once.

    Args:
        evals_cfg (dict): the ``evals`` section: ``learning`` and ``forgetting`` lists of tasks
            (schemas/experiment.schema.json evalTask: loss | multiple_choice | exact_match with
            data, max_examples, max_new_tokens; lm_eval with task, include_path, limit, ...;
            kl_to_base with data, n, top_k).
        tokenizer: encode(str) -> list[int], decode(list[int]) -> str, bos/eos/pad_token_id, and
            hf() (a transformers tokenizer, for lm-eval).
        seq_len (int): longest sequence scored (longer ones are cut, contexts from the left).
        device: fallback device; ``evaluate`` uses the model's own.
        base_dir (Path): folder that relative .jsonl paths and include_paths are relative to.
        run_dir (Path | None): when given, each lm_eval task's resolved config is written to
            ``run_dir/lm_eval/<eval name>.yaml`` (what exactly ran, kept with the run).
        on_log (callable | None): ``on_log(level, message)`` for a task that failed and for
            evaluation taking more than 10% of the wall time.

    Raises:
        ConfigError (lmeval.LmEvalConfigError): an lm_eval task that cannot run (unknown name,
            code execution not allowed, dataset missing offline).
    """

    # Set by the recipe: the run's compute dtype on CUDA (None: fp32, train.precision fp32), and
    # whether the model is FSDP2-sharded: then every rank evaluates, generation keeps all ranks in
    # each step until all are done (synced_gpus), and no inference_mode (the parameters FSDP
    # gathers there would become inference tensors that training cannot update afterwards).
    autocast_dtype: torch.dtype | None = torch.bfloat16
    sharded: bool = False

    def __init__(self, evals_cfg: dict, tokenizer, seq_len: int, device, base_dir: Path, *,
                 run_dir: Path | None = None, on_log=None):
        self.tok, self.seq_len, self.device, self.base_dir = tokenizer, int(seq_len), device, Path(base_dir)
        self.on_log = on_log or (lambda level, message: None)
        self.tasks = []
        for role in ("learning", "forgetting"):
            for i, t in enumerate(evals_cfg.get(role) or []):
                task = {"name": t["name"], "role": role, "type": t["type"], "data": t.get("data"),
                        "max_examples": int(t.get("max_examples", 64)),
                        "max_new_tokens": int(t.get("max_new_tokens", 32)),
                        "where": f"evals.{role}[{i}] ({t['name']})"}
                if t["type"] == "lm_eval":
                    from .lmeval import LmEvalTask
                    task["runner"] = LmEvalTask(t, task["where"], tokenizer, self.base_dir)
                elif t["type"] == "kl_to_base":
                    from .kl import KlToBase
                    texts = _data().load_texts(t["data"], self.base_dir)
                    windows = self._packed_windows(texts, int(t.get("n", 16)))
                    task["runner"] = KlToBase([ids[: self.seq_len] for ids, _ in windows], int(t.get("top_k", 32)))
                else:
                    task["items"] = self._prepare(task)
                self.tasks.append(task)
        if run_dir is not None:
            self._write_task_configs(Path(run_dir))
        self.baseline: dict[str, float | None] | None = None
        self.started = time.monotonic()
        self.eval_seconds = 0.0
        self.warned_share = False

    def _write_task_configs(self, run_dir: Path) -> None:
        import yaml
        for t in self.tasks:
            if t["type"] != "lm_eval":
                continue
            folder = run_dir / "lm_eval"
            folder.mkdir(exist_ok=True)
            text = yaml.safe_dump(json.loads(json.dumps(t["runner"].dump_config(), default=str)), sort_keys=False)
            (folder / f"{t['name']}.yaml").write_text(
                f"# lm-eval's resolved config of the task behind eval '{t['name']}', as this run loaded it.\n{text}",
                encoding="utf-8")

    def remember_base(self, model) -> None:
        """Take ``model`` as the base for the kl_to_base tasks (needed by full finetuning, whose
        base weights are gone after the first update; the trainer calls it before training and
        before a resumed checkpoint loads). Without it, the first model evaluated is the base."""
        device = _model_device(model, self.device)
        was_training = model.training
        model.eval()
        try:
            for t in self.tasks:
                if t["type"] == "kl_to_base":
                    t["runner"].remember_base(model, device)
        finally:
            model.train(was_training)

    # -- preparation (token ids, once)

    def _prepare(self, t: dict):
        ref, n, data = t["data"], t["max_examples"], _data()
        if t["type"] == "loss":
            if _is_text_ref(ref):
                return self._packed_windows(data.load_texts(ref, self.base_dir), n)
            examples = data.load_examples(ref, self.base_dir)
            if not any(ex["prompt"] for ex in examples):
                return self._packed_windows([ex["response"] for ex in examples], n)
            return [self._instruction_row(ex["prompt"], ex["response"]) for ex in examples[:n]]
        if t["type"] == "multiple_choice":
            return [self._choice_rows(it) for it in self._choice_items(ref, n)]
        if t["type"] == "exact_match":
            examples = [ex for ex in data.load_examples(ref, self.base_dir) if "answer" in ex][:n]
            if not examples:
                raise ValueError(f"eval '{t['name']}': exact_match needs examples with an 'answer' ({ref})")
            return [([self.tok.bos_token_id] + self.tok.encode(ex["prompt"]))[-self.seq_len:] for ex in examples], \
                   [str(ex["answer"]) for ex in examples]
        raise ValueError(f"unknown eval type {t['type']!r}")

    def _choice_items(self, ref: str, n: int) -> list[dict]:
        """{context, choices, label} items: from a JSONL of such rows, from examples with an
        answer, or a cloze from text."""
        data = _data()
        if _is_text_ref(ref):
            return cloze_from_texts(data.load_texts(ref, self.base_dir), n, code="python-stdlib" in ref)
        if ref.endswith(".jsonl"):
            path = Path(ref).expanduser()
            rows = [json.loads(ln) for ln in (path if path.is_absolute() else self.base_dir / path)
                    .read_text(encoding="utf-8").splitlines() if ln.strip()]
            if rows and all("choices" in r and "label" in r for r in rows):
                return [{"context": str(r.get("context", "")), "choices": [str(c) for c in r["choices"]],
                         "label": int(r["label"])} for r in rows[:n]]
        examples = data.load_examples(ref, self.base_dir)
        if examples and all("answer" in ex for ex in examples):
            return choices_from_examples(examples, n)
        return cloze_from_texts([ex["prompt"] + ex["response"] for ex in examples], n)

    def _packed_windows(self, texts: list[str], n: int) -> list[tuple[list[int], int]]:
        """Up to n windows of seq_len + 1 tokens, evenly spaced through the eos-joined stream."""
        need = self.seq_len + 1
        stream: list[int] = []
        for text in texts:
            stream += self.tok.encode(text) + [self.tok.eos_token_id]
        n_windows = (len(stream) - 1) // self.seq_len
        if n_windows < 1:
            raise ValueError(f"not enough text for one eval sequence of {self.seq_len} tokens")
        picks = sorted({round(i * (n_windows - 1) / max(1, n - 1)) for i in range(min(n, n_windows))})
        return [(stream[w * self.seq_len: w * self.seq_len + need], 1) for w in picks]

    def _instruction_row(self, prompt: str, response: str) -> tuple[list[int], int]:
        """(ids, index of the first scored target): bos + prompt + response + eos, as in training."""
        p = [self.tok.bos_token_id] + self.tok.encode(prompt)
        ids = (p + self.tok.encode(response) + [self.tok.eos_token_id])[: self.seq_len + 1]
        return ids, min(len(p), len(ids) - 1)

    def _choice_rows(self, it: dict) -> tuple[list[tuple[list[int], int]], int, list[int]]:
        """Per choice (context + choice ids, index of the choice's first token); label; byte lengths."""
        start = self.tok.bos_token_id if it.get("instruction") else self.tok.eos_token_id
        ctx = [start] + self.tok.encode(it["context"])
        rows = []
        for c in it["choices"]:
            cont = self.tok.encode(c)[: self.seq_len]
            ids = (ctx + cont)[-(self.seq_len + 1):]  # cut the context from the left
            rows.append((ids, len(ids) - len(cont)))
        return rows, it["label"], [max(1, len(c.encode("utf-8"))) for c in it["choices"]]

    # -- scoring

    def _token_nll(self, model, rows: list[tuple[list[int], int]], device) -> list[tuple[float, int]]:
        """For each (ids, first): the summed next-token NLL of ids[first:] and its token count."""
        width = max(len(ids) for ids, _ in rows)
        bs = max(1, EVAL_BATCH_TOKENS // width)
        order = sorted(range(len(rows)), key=lambda i: -len(rows[i][0]))  # similar lengths together
        res: dict[int, tuple[float, int]] = {}
        for b in range(0, len(order), bs):
            idx = order[b: b + bs]
            T = max(len(rows[i][0]) for i in idx)
            x = torch.full((len(idx), T), self.tok.pad_token_id, dtype=torch.long)
            y = torch.full((len(idx), T), -100, dtype=torch.long)
            mask = torch.zeros((len(idx), T), dtype=torch.long)
            for r, i in enumerate(idx):
                ids, first = rows[i]
                x[r, : len(ids)] = torch.tensor(ids)
                mask[r, : len(ids)] = 1
                y[r, first: len(ids)] = torch.tensor(ids[first:])
            x, y, mask = x.to(device), y.to(device), mask.to(device)
            with self._autocast(device):
                logits = model(input_ids=x[:, :-1], attention_mask=mask[:, :-1], use_cache=False).logits
            nll = lm_loss(logits, y[:, 1:], reduction="none")  # (B, T-1), 0 where not scored
            sums, counts = nll.sum(1).tolist(), (y[:, 1:] != -100).sum(1).tolist()
            for r, i in enumerate(idx):
                res[i] = (sums[r], int(counts[r]))
        return [res[i] for i in range(len(rows))]

    def _score(self, model, t: dict, device) -> dict:
        kind = t["type"]
        if "runner" in t:
            return t["runner"].score(model, device)
        if kind == "loss":
            scored = self._token_nll(model, t["items"], device)
            tokens = sum(c for _, c in scored)
            return {"metric": "loss", "value": sum(s for s, _ in scored) / max(1, tokens),
                    "higher_is_better": False, "n": len(scored), "tokens": tokens}
        if kind == "multiple_choice":
            flat = [row for rows, _, _ in t["items"] for row in rows]
            scored = self._token_nll(model, flat, device)
            correct = correct_norm = 0
            k = 0
            for rows, label, lengths in t["items"]:
                ll = [-s for s, _ in scored[k: k + len(rows)]]
                k += len(rows)
                correct += int(max(range(len(ll)), key=lambda j: ll[j]) == label)
                correct_norm += int(max(range(len(ll)), key=lambda j: ll[j] / lengths[j]) == label)
            n = len(t["items"])
            return {"metric": "accuracy", "value": correct / max(1, n), "higher_is_better": True, "n": n,
                    "accuracy_norm": correct_norm / max(1, n)}
        prompts, answers = t["items"]
        outputs = self._generate(model, prompts, t["max_new_tokens"], device)
        hits = sum(answers_match(extract_answer(o), a) for o, a in zip(outputs, answers))
        return {"metric": "exact_match", "value": hits / len(answers), "higher_is_better": True,
                "n": len(answers), "sample": outputs[0][:200]}

    def _generate(self, model, prompts: list[list[int]], max_new: int, device) -> list[str]:
        """Greedy decoding, left-padded batches, stopping at eos; returns the decoded new text."""
        gen = getattr(model, "module", model)  # DDP keeps generate on .module
        outs = []
        bs = max(1, EVAL_BATCH_TOKENS // (max(len(p) for p in prompts) + max_new))
        for b in range(0, len(prompts), bs):
            batch = prompts[b: b + bs]
            T = max(len(p) for p in batch)
            x = torch.full((len(batch), T), self.tok.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(batch), T), dtype=torch.long)
            for r, p in enumerate(batch):
                x[r, T - len(p):], mask[r, T - len(p):] = torch.tensor(p), 1
            with self._autocast(device):
                y = gen.generate(input_ids=x.to(device), attention_mask=mask.to(device), max_new_tokens=max_new,
                                 do_sample=False, pad_token_id=self.tok.pad_token_id,
                                 eos_token_id=self.tok.eos_token_id, synced_gpus=self.sharded)
            for row in y[:, T:].tolist():
                if self.tok.eos_token_id in row:
                    row = row[: row.index(self.tok.eos_token_id)]
                outs.append(self.tok.decode(row))
        return outs

    def _autocast(self, device):
        # bf16 autocast on CUDA, as training; fp32 on CPU (bf16 matmuls are slow on many CPUs).
        if torch.device(device).type == "cuda" and self.autocast_dtype is not None:
            return torch.autocast("cuda", dtype=self.autocast_dtype)
        return nullcontext()

    # -- the payload

    def set_baseline(self, step0_payload: dict) -> None:
        """Take the aggregate values of an earlier ``eval`` payload (the step-0 event in
        events.jsonl) as the baseline, so a resumed run's deltas stay relative to the base."""
        self.baseline = {r: (step0_payload.get(r) or {}).get("value") for r in ("learning", "forgetting")}

    def evaluate(self, model, step: int) -> dict:
        """Score every task; returns the ``eval`` event payload (no v/type/time).

        Args:
            model: the causal LM (transformers, PEFT-wrapped or DDP); left in its train/eval mode.
            step (int): optimizer step (0 = the base).

        Returns:
            dict: {step, seconds, tasks: [{name, role, type, metric, value, higher_is_better, n,
            seconds, ...}], learning, forgetting}: aggregates {value, higher_is_better, delta} or
            None (no task, or one of the role's tasks failed at this step).
        """
        device = _model_device(model, self.device)
        was_training = model.training
        model.eval()
        t_all = time.perf_counter()
        try:
            with torch.no_grad() if self.sharded else torch.inference_mode():
                tasks = [self._scored(model, t, device, step) for t in self.tasks]
        finally:
            model.train(was_training)
        seconds = time.perf_counter() - t_all
        payload = {"step": int(step), "seconds": round(seconds, 3), "tasks": tasks}
        values = {}
        for role in ("learning", "forgetting"):
            mine = [t for t in tasks if t["role"] == role]
            values[role] = None if any(t["value"] is None for t in mine) else aggregate(mine)
        if self.baseline is None:
            self.baseline = {r: (a or {}).get("value") for r, a in values.items()}
        for role, agg in values.items():
            if agg is not None:
                base = self.baseline.get(role)
                agg["delta"] = agg["value"] - base if base is not None else 0.0
            payload[role] = agg
        self._note_share(step, seconds)
        return payload

    def _scored(self, model, t: dict, device, step: int) -> dict:
        """One task's entry; a task that raises is reported on its entry and the others run."""
        head = {"name": t["name"], "role": t["role"], "type": t["type"]}
        t0 = time.perf_counter()
        try:
            out = {**head, **self._score(model, t, device)}
            out["value"] = float(out["value"])
        except Exception as e:  # incl. the sandbox's limits: this eval failed, the run goes on
            message = f"{type(e).__name__}: {e}".strip()
            self.on_log("error", f"eval {t['where']} failed at step {step}: {message}\n{traceback.format_exc(limit=-3)}")
            out = {**head, **self._describe(t), "value": None, "n": 0, "error": message[:2000]}
        out["seconds"] = round(time.perf_counter() - t0, 3)
        return out

    @staticmethod
    def _describe(t: dict) -> dict:
        """The metric and direction a task reports, for its entry when it failed."""
        runner = t.get("runner")
        if runner is not None and hasattr(runner, "metric"):
            return {"metric": runner.metric, "higher_is_better": runner.higher_is_better}
        metric = {"loss": "loss", "multiple_choice": "accuracy", "exact_match": "exact_match", "kl_to_base": "kl"}[t["type"]]
        return {"metric": metric, "higher_is_better": t["type"] in ("multiple_choice", "exact_match")}

    def _note_share(self, step: int, seconds: float) -> None:
        """Warn once when evaluation has taken more than 10% of the wall time since the evaluator
        was made (checked after each evaluation past step 0, once the run is a minute old)."""
        self.eval_seconds += seconds
        wall = time.monotonic() - self.started
        # after a minute of wall time: in the first seconds of a run any evaluation is most of it
        if step > 0 and not self.warned_share and wall >= 60 and self.eval_seconds / wall > 0.10:
            self.warned_share = True
            self.on_log("warning", f"evaluation took {self.eval_seconds / wall:.0%} of the wall time so far "
                                   f"({self.eval_seconds:.1f} s of {wall:.1f} s): lower the evals' limit / n / "
                                   "max_examples or raise evals.every_steps to keep it under 10%")


def _model_device(model, fallback):
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device(fallback)


def check_evals(evals_cfg: dict, base_dir: Path) -> None:
    """What can be checked of the lm_eval tasks before anything loads (the trainer calls it
    first): include_path, task names, code execution. Raises ConfigError naming the eval."""
    for role in ("learning", "forgetting"):
        for i, t in enumerate(evals_cfg.get(role) or []):
            if t.get("type") == "lm_eval":
                from .lmeval import check_task
                check_task(t, f"evals.{role}[{i}] ({t['name']})", Path(base_dir))


def aggregate(tasks: list[dict]) -> dict | None:
    """Mean of the tasks' values, or None for no tasks. Mixed directions: lower-is-better values
    are negated first and the aggregate is higher-is-better.

    Args:
        tasks (list[dict]): task scores with ``value`` and ``higher_is_better``.

    Returns:
        dict | None: {value, higher_is_better} (``delta`` is added by the evaluator).
    """
    if not tasks:
        return None
    directions = {t["higher_is_better"] for t in tasks}
    if len(directions) == 1:
        hib = directions.pop()
        return {"value": sum(t["value"] for t in tasks) / len(tasks), "higher_is_better": hib}
    return {"value": sum(t["value"] if t["higher_is_better"] else -t["value"] for t in tasks) / len(tasks),
            "higher_is_better": True}
