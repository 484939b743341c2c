"""The training recipe: setup -> train -> cleanup (the shape of torchtune's recipes), for LoRA
and full finetuning alike. Everything it reports goes to the run folder: events.jsonl
(events.py), status.json (status.py), checkpoints/ (checkpoint.py).

Several processes (``torchrun``, or anything that sets RANK / WORLD_SIZE / MASTER_ADDR the
torch.distributed way): DDP over a gloo (CPU) or nccl (CUDA) process group. Rank 0 alone
writes events, status, checkpoints, evals and spectra; batches are sharded by rank (each rank
takes every world_size-th batch of ``train.batch_size``, so the global batch is
batch_size x world_size x grad_accum); gradients are all-reduced by DDP. With WORLD_SIZE unset
or 1 nothing of this runs.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import os
import random
import resource
import signal
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch

from . import checkpoint as ckpt
from .config import ConfigError, load_config
from .data import make_batches
from .events import EventWriter, read_events
from .failures import failure_message, refuse_config
from .lora import apply_method
from .losses import lm_loss
from .model import count_params, load_base
from .optim import build_optimizer, get_lr, set_lr
from .paths import data_base_dir
from .status import StatusFile


class _Silent:
    """Stands in for EventWriter and StatusFile on ranks other than 0: they write nothing."""

    def emit(self, type: str, **fields) -> dict:
        return {"type": type, **fields}

    def __getattr__(self, name):  # update, update_throttled, start_heartbeat, finish
        return lambda *args, **kwargs: None


def dist_env() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) from torchrun's environment; (0, 0, 1) without it."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 0, 1
    return int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0")), world


class Stopped(Exception):
    """Raised when a stop was requested before training started (e.g. during pretraining)."""


def nonfinite_name(value: float) -> str:
    """How the events schema names a non-finite number: "NaN", "Infinity" or "-Infinity"."""
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


class Diverged(Exception):
    """The training loss of optimizer step ``step`` (1-based, as train events number steps) was
    not finite. The run ends failed at once: no train event or checkpoint for that step or after.

    Args:
        step (int): the first step whose loss was not finite.
        value (float): that loss (NaN, inf or -inf).
    """

    def __init__(self, step: int, value: float):
        self.step, self.value = step, nonfinite_name(value)
        super().__init__(f"loss diverged ({self.value}) at step {step}")

    def payload(self) -> dict:
        """run_finished's ``diverged`` field."""
        return {"step": self.step, "value": self.value}


def pick_device(name: str) -> torch.device:
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError("train.device is cuda but CUDA is not available")
        return torch.device("cuda")
    return torch.device("cpu")


def memory_mb(device: torch.device) -> float:
    """Peak CUDA memory allocated, or the process's peak resident memory on CPU, in MiB."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _load_base(base: str, pretrain_steps, on_progress):
    """model.load_base, with a message that says what to do when an ``hf:`` model is missing."""
    try:
        return load_base(base, pretrain_steps, on_progress)
    except OSError as e:
        if not base.startswith("hf:"):
            raise
        name = base[3:]
        if _hf_offline():
            raise OSError(f"model.base {base}: '{name}' is not a local folder and not in the Hugging Face "
                          f"cache, and HF_HUB_OFFLINE is set, so nothing was downloaded. Use a folder "
                          f"holding config.json, the weights and the tokenizer, or download it first.") from e
        raise OSError(f"model.base {base}: cannot load '{name}' as a local folder or from the Hugging "
                      f"Face Hub: {e}") from e


def _hf_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")


class Recipe:
    """One run in ``run_dir``. ``stop_after`` stops (as SIGINT would) after that many steps."""

    def __init__(self, run_dir: Path, resume: bool = False, stop_after: int | None = None):
        self.run_dir = Path(run_dir)
        self.resume, self.stop_after = resume, stop_after
        self.rank, self.local_rank, self.world_size = dist_env()
        self.is_main = self.rank == 0
        self.events = EventWriter(self.run_dir) if self.is_main else _Silent()
        self.status = StatusFile(self.run_dir) if self.is_main else _Silent()
        self.ddp = None  # the DistributedDataParallel wrapper when world_size > 1
        self.stop_requested = False
        self.step = 0

    # ------------------------------------------------------------------ setup

    def setup(self) -> None:
        self.status.start_heartbeat()
        self.status.update(phase="starting")
        self.cfg = cfg = load_config(self.run_dir)
        t = cfg.train
        self.total_steps = t["steps"]
        self.status.update(total_steps=self.total_steps)
        self.device = pick_device(t["device"])
        if self.world_size > 1:
            self._init_distributed()
        # bf16-true is bf16-mixed here until the trainer holds weights in bf16 (issue 12)
        self.bf16 = t["precision"] in ("bf16", "bf16-mixed", "bf16-true") or (
            t["precision"] == "auto" and self.device.type == "cuda" and torch.cuda.is_bf16_supported())
        if self.bf16 and self.device.type == "cpu":
            self.events.emit("log", level="warning", message="bf16 autocast on CPU is slow; fp32 is usually faster")
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True  # TF32 matmuls for the fp32 parts
            torch.backends.cudnn.allow_tf32 = True
        seed_everything(t["seed"] + self.rank)  # rank 0 (and a single process): the seed itself
        self._setup_model()
        self.base_dir = data_base_dir(self.run_dir)
        self.batches = make_batches(cfg.data, self.tokenizer, t["batch_size"], t["seed"], self.base_dir)
        self._setup_observers()  # before any update (and before a resumed checkpoint loads): W_base
        self.optimizer = build_optimizer(self.model.parameters(), t["optimizer"], t["lr"],
                                         t["weight_decay"], self.device)
        self.tokens = 0
        self.resumed_from = self._maybe_resume()
        if self.resumed_from is not None and self.evaluator is not None:
            self._restore_eval_baseline()
        if self.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel
            # broadcasts rank 0's weights once, then all-reduces gradients; the only buffers
            # (rotary frequencies) are constants, so no per-step buffer broadcast
            self.ddp = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                broadcast_buffers=False)
        device_name = str(self.device)
        if self.device.type == "cuda":
            device_name = f"cuda:{torch.cuda.current_device()} ({torch.cuda.get_device_name()})"
        self.events.emit(
            "run_started", config=cfg.raw, device=device_name, precision="bf16" if self.bf16 else "fp32",
            method=cfg.method, model=cfg.model["base"], params=count_params(self.model),
            total_steps=self.total_steps, resumed_from=self.resumed_from, world_size=self.world_size)
        params = count_params(self.model)
        if self.is_main:
            print(f"run {cfg.name}: {cfg.method} on {cfg.model['base']} ({device_name}"
                  f"{f' x {self.world_size} processes' if self.world_size > 1 else ''}), "
                  f"{params['trainable']:,} of {params['total']:,} params train", flush=True)

    def _init_distributed(self) -> None:
        import torch.distributed as dist
        if self.device.type == "cuda":
            torch.cuda.set_device(self.local_rank)
            self.device = torch.device("cuda", self.local_rank)
        if not dist.is_initialized():
            # generous timeout: other ranks wait while rank 0 pretrains a base or evaluates
            dist.init_process_group(backend="nccl" if self.device.type == "cuda" else "gloo",
                                    timeout=datetime.timedelta(hours=2))
        if dist.get_world_size() != self.world_size:
            raise RuntimeError(f"WORLD_SIZE={self.world_size} but the process group has {dist.get_world_size()}")

    def _setup_model(self) -> None:
        cfg = self.cfg

        def on_pretrain(step, total, loss, cached):
            self._check_stop_before_training()
            self.events.emit("pretrain", step=step, total_steps=max(total, 1), loss=loss, cached=cached)

        if cfg.model["base"].startswith("builtin:"):
            self.status.update(phase="pretraining")
        if self.world_size > 1 and not self.is_main:
            torch.distributed.barrier()  # rank 0 pretrains (or finds) the base first, reporting progress
        model, self.tokenizer = _load_base(cfg.model["base"], cfg.model.get("pretrain_steps"), on_pretrain)
        if self.world_size > 1 and self.is_main:
            torch.distributed.barrier()
        self.model = apply_method(model, cfg.method, cfg.lora, cfg.train["seed"]).to(self.device)
        self.model.train()

    def _setup_observers(self) -> None:
        cfg = self.cfg
        self.evaluator = self.spectra = None
        if not self.is_main:
            return  # evals and spectra are rank 0's (on its unwrapped model)
        if cfg.evals["learning"] or cfg.evals["forgetting"]:
            from .evals import Evaluator
            self.evaluator = Evaluator(cfg.evals, self.tokenizer, cfg.data["seq_len"], self.device, self.base_dir)
        if cfg.spectra["every_steps"] > 0:
            from .spectra import SpectraTracker
            self.spectra = SpectraTracker(self.model, cfg.method, cfg.spectra, cfg.lora, cfg.train["seed"])

    def _maybe_resume(self) -> int | None:
        if not self.resume:
            return None
        found = ckpt.list_checkpoints(self.run_dir)
        if not found:
            self.events.emit("log", level="warning", message="--resume: no checkpoint found, starting from step 0")
            return None
        state = ckpt.load_checkpoint(found[-1], self.model, self.optimizer, self.cfg.method)
        self.step, self.tokens = state["step"], state.get("tokens", 0)
        self.events.emit("log", level="info", message=f"resumed from {found[-1].name}")
        return self.step

    def _restore_eval_baseline(self) -> None:
        """A resumed run skips the step-0 evaluation; take the base's scores from the step-0
        ``eval`` event already in events.jsonl so deltas stay relative to the base."""
        step0 = next((e for e in read_events(self.run_dir) if e.get("type") == "eval" and e.get("step") == 0), None)
        if step0 is None:
            self.events.emit("log", level="warning",
                             message="--resume: no step-0 eval in events.jsonl; deltas are relative to the resumed step")
            return
        self.evaluator.set_baseline(step0)

    def _check_stop_before_training(self) -> None:
        if self.stop_requested:
            raise Stopped()

    # ------------------------------------------------------------------ train

    def _loss_step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean next-token cross-entropy over targets != -100. x, y: (B, T) int64."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            logits = (self.ddp or self.model)(input_ids=x).logits  # (B, T, V)
        return lm_loss(logits, y)

    def _observers_due(self, step: int, final: bool) -> tuple[bool, bool]:
        """(evals due, spectra due) at ``step``, from the config alone, so every rank agrees
        (the evaluator and the tracker exist on rank 0 only)."""
        evals, spectra = self.cfg.evals, self.cfg.spectra
        evals_due = bool(evals["learning"] or evals["forgetting"]) and (step % evals["every_steps"] == 0 or final)
        every = spectra["every_steps"]
        spectra_due = every > 0 and step > 0 and (step % every == 0 or final)
        return evals_due, spectra_due

    def _observe(self, step: int, final: bool) -> None:
        """Evals and spectra when due; they run under fork_rng so they never shift the
        training RNG (a resumed run then matches an uninterrupted one)."""
        evals_due, spectra_due = self._observers_due(step, final)
        evals_due &= self.evaluator is not None  # both exist on rank 0 only
        spectra_due &= self.spectra is not None
        if not (evals_due or spectra_due):
            return
        devices = [torch.cuda.current_device()] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            self.model.eval()
            if evals_due:
                self.status.update(phase="evaluating")
                result = self.evaluator.evaluate(self.model, step)
                self.events.emit("eval", **{**result, "step": step})
            if spectra_due:
                self.status.update(phase="spectra")
                for payload in self.spectra.compute(self.model, step):
                    self.events.emit("spectrum", **payload)
            self.model.train()
        self.status.update(phase="training")

    def _checkpoint(self) -> None:
        if not self.is_main:
            return
        self.status.update(phase="checkpointing")
        path, fmt = ckpt.save_checkpoint(
            self.run_dir, self.model, self.optimizer, self.cfg.method, self.step,
            {"tokens": self.tokens, "data_position": self.step * self.cfg.train["grad_accum"]},
            self.cfg.checkpoint["keep_last"])
        self.events.emit("checkpoint", step=self.step, path=path, format=fmt)
        self.status.update(phase="training")

    def _reset_divergence(self) -> None:
        # The first step whose loss was not finite (0: none yet) and that loss, kept on the
        # training device so that noting them costs no CPU-GPU sync.
        self._bad_step = torch.zeros((), dtype=torch.int64, device=self.device)
        self._bad_loss = torch.zeros((), dtype=torch.float64, device=self.device)

    def _note_divergence(self, loss: torch.Tensor) -> None:
        """Remember the step if ``loss`` (this step's, all-reduced under DDP) is the first that
        is not finite. Device ops only (torch.where, no .item())."""
        first = (self._bad_step == 0) & ~torch.isfinite(loss)
        self._bad_step = torch.where(first, self.step, self._bad_step)
        self._bad_loss = torch.where(first, loss.to(torch.float64), self._bad_loss)

    def _sync_step(self, loss: torch.Tensor, grad_norm: torch.Tensor) -> tuple[float, float]:
        """One CPU-GPU sync: this step's loss and gradient norm, and the divergence record.

        Raises:
            Diverged: a step since the last sync had a loss that was not finite. Every rank
                reads the same all-reduced record at the same steps, so every rank raises.
        """
        values = torch.stack([loss.to(torch.float64), grad_norm.to(torch.float64),
                              self._bad_step.to(torch.float64), self._bad_loss]).tolist()
        loss_value, grad_norm_value, bad_step, bad_loss = values
        if bad_step:
            raise Diverged(int(bad_step), bad_loss)
        return loss_value, grad_norm_value

    def train(self) -> str:
        """Run the remaining steps. Returns "completed" or "stopped".

        Raises:
            Diverged: when the training loss of a step is not finite (checked at the next
                logging step, checkpoint, eval or spectrum, and at the end: never after one).
        """
        t = self.cfg.train
        accum, clip, log_every = t["grad_accum"], t["grad_clip"], t["log_every_steps"]
        ckpt_every = self.cfg.checkpoint["every_steps"]
        params = [p for p in self.model.parameters() if p.requires_grad]
        self._reset_divergence()
        self.status.update(phase="training", step=self.step)
        if self.resumed_from is None:
            self._observe(0, final=self.total_steps == 0)
        while self.step < self.total_steps:
            t0 = time.perf_counter()
            lr = get_lr(self.step, t["lr"], self.total_steps, t["warmup_steps"], t["schedule"])
            set_lr(self.optimizer, lr)
            loss_sum, step_tokens = 0.0, 0
            for micro in range(accum):
                x, y = self.batches.batch((self.step * accum + micro) * self.world_size + self.rank)
                step_tokens += int((y != -100).sum())  # counted on the CPU copy: no device sync
                x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
                # DDP: all-reduce gradients only on the last micro-batch of the step
                sync = self.ddp.no_sync() if self.ddp is not None and micro < accum - 1 else contextlib.nullcontext()
                with sync:
                    loss = self._loss_step(x, y) / accum
                    loss.backward()
                loss_sum += loss.detach()
            grad_norm = torch.nn.utils.clip_grad_norm_(params, clip if clip > 0 else float("inf"))
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.step += 1
            stop_any = self.stop_requested
            if self.ddp is not None:  # every rank: the global loss and tokens, and one stop decision
                loss_sum, step_tokens, stop_any = self._all_reduce_step(loss_sum, step_tokens, stop_any)
            self.tokens += step_tokens
            self._note_divergence(torch.as_tensor(loss_sum))
            final = self.step == self.total_steps
            logging = self.step % log_every == 0 or final or self.step == 1
            stopping = stop_any or (self.stop_after is not None and self.step >= self.stop_after)
            checkpointing = final or stopping or (ckpt_every > 0 and self.step % ckpt_every == 0)
            if logging or checkpointing or any(self._observers_due(self.step, final)):
                # the one CPU-GPU sync of a step, only on these steps; raises Diverged
                loss_value, grad_norm_value = self._sync_step(torch.as_tensor(loss_sum), grad_norm)
            if logging:
                self._log_step(lr, loss_value, grad_norm_value, step_tokens, time.perf_counter() - t0)
            self._observe(self.step, final=final)
            if checkpointing:
                self._checkpoint()
            if stopping and not final:
                return "stopped"
        return "completed"

    def _log_step(self, lr: float, loss: float, grad_norm: float, step_tokens: int, dt: float) -> None:
        """The train event (exactly the schema's train fields), status and a progress line."""
        self.events.emit(
            "train", step=self.step, loss=loss, lr=lr, grad_norm=grad_norm,
            tokens_per_s=step_tokens / dt if dt > 0 else None, tokens=self.tokens,
            memory_mb=round(memory_mb(self.device), 1))
        self.status.update_throttled(step=self.step, loss=loss)
        if self.is_main:
            print(f"step {self.step}/{self.total_steps} loss {loss:.4f} lr {lr:.2e} "
                  f"grad_norm {grad_norm:.3f} {step_tokens / dt if dt > 0 else 0:,.0f} tok/s", flush=True)

    def _all_reduce_step(self, loss_sum, step_tokens: int, stop: bool):
        """One small all-reduce per step: mean loss over ranks, total target tokens, any stop."""
        import torch.distributed as dist
        stats = torch.cat([torch.as_tensor(loss_sum, dtype=torch.float64, device=self.device).reshape(1),
                           torch.tensor([step_tokens, float(stop)], dtype=torch.float64, device=self.device)])
        dist.all_reduce(stats)
        tokens, stops = stats[1:].tolist()
        return stats[0] / self.world_size, int(tokens), stops > 0

    # ------------------------------------------------------------------ cleanup

    def cleanup(self, state: str, error: str | None = None, tb: str | None = None,
                diverged: Diverged | None = None) -> None:
        """run_finished, the final status.json, a last line in train.log; leaves the process group.

        Args:
            state (str): completed | failed | stopped.
            error (str | None): the failure's message (run_finished and status.json).
            tb (str | None): the traceback of a crash.
            diverged (Diverged | None): set when the loss diverged: run_finished then says where
                (``diverged``, and ``step`` is that step, not the last one trained).
        """
        extra = {}
        if diverged is not None:
            self.step = diverged.step
            extra["diverged"] = diverged.payload()
        try:
            self.events.emit("run_finished", status=state, error=error, step=self.step, traceback=tb, **extra)
        except OSError as e:  # a full disk must not also cost the final status below
            print(f"could not write run_finished: {failure_message(e)}", file=sys.stderr, flush=True)
        if diverged is not None:
            self.status.update(step=self.step)
        self.status.finish(state, error)
        if self.is_main or error:
            prefix = f"rank {self.rank}: " if self.world_size > 1 else ""
            print(f"{prefix}run {state}" + (f": {error}" if error else ""), flush=True)
        if self.world_size > 1:
            import torch.distributed as dist
            if dist.is_initialized():
                dist.destroy_process_group()


def run(run_dir: Path | str, resume: bool = False, stop_after: int | None = None,
        stopped_early: list[int] | None = None) -> int:
    """Train the run in ``run_dir``. Returns the process exit code: 0 completed or stopped,
    1 failed (the error is in events.jsonl's run_finished and status.json), 2 an invalid
    config.yaml (nothing trained; the error names the field). ``stopped_early``
    holds signals that arrived before this function installed its handler (it is appended to
    by ``__main__``'s start-up handler, so a signal during set-up is seen too)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        print(f"error: run folder not found: {run_dir}", file=sys.stderr)
        return 1
    try:  # a broken config starts nothing: exit 2, naming the field (as the extension and the CLI do)
        load_config(run_dir)
    except ConfigError as e:
        return refuse_config(run_dir, e)
    if stop_after is None and os.environ.get("FINETUNE_LAB_STOP_AFTER"):
        # Stop (as SIGINT would: checkpoint, status stopped) after that step; reaches every
        # torchrun worker through the environment, so a multi-process stop is deterministic.
        stop_after = int(os.environ["FINETUNE_LAB_STOP_AFTER"])
    recipe = Recipe(run_dir, resume=resume, stop_after=stop_after)

    def on_signal(signum, frame):
        # Finish the current step, checkpoint, then stop (docs/DECISIONS.md).
        print(f"received {signal.Signals(signum).name}: stopping after this step", flush=True)
        recipe.stop_requested = True

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    if stopped_early:
        on_signal(stopped_early[0], None)
    try:
        recipe.setup()
        recipe.cleanup(recipe.train())
        return 0
    except Stopped:
        recipe.cleanup("stopped")
        return 0
    except Diverged as e:  # not a crash: no traceback; the last good checkpoint stays as it is
        with contextlib.suppress(Exception):
            recipe.cleanup("failed", str(e), diverged=e)
        return 1
    except Exception as e:  # incl. torch.OutOfMemoryError: report it, keep the folder readable
        tb = traceback.format_exc()
        print(tb, file=sys.stderr, flush=True)
        message = failure_message(e, run_dir)
        with contextlib.suppress(Exception):
            recipe.cleanup("failed", message, tb)
        return 1
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
