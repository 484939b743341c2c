"""The training recipe: setup -> train -> cleanup (the shape of torchtune's recipes), for LoRA
and full finetuning alike. Everything it reports goes to the run folder: events.jsonl
(events.py), status.json (status.py), checkpoints/ (checkpoint.py).

Several processes (``torchrun``, or anything that sets RANK / WORLD_SIZE / MASTER_ADDR the
torch.distributed way): DDP, or FSDP2 with ``launcher.sharding: fsdp`` (distributed.py), over a
gloo (CPU) or nccl (CUDA) process group. Rank 0 alone writes events, status, checkpoints, evals
and spectra; batches are sharded by rank (each rank takes every world_size-th batch of
``train.batch_size``, so the global batch is batch_size x world_size x grad_accum). With
WORLD_SIZE unset or 1 nothing of this runs.

Precision (``train.precision``) is precision.py's; ``train.gradient_checkpointing`` is
transformers' own activation checkpointing, non-reentrant.
"""

from __future__ import annotations

import contextlib
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
from . import distributed as dist_utils
from . import precision as prec
from .config import ConfigError, load_config
from .data import make_batches
from .distributed import Silent, dist_env
from .divergence import Diverged, nonfinite_name  # noqa: F401  (nonfinite_name: re-exported for the tests)
from .evals import check_evals
from .events import EventWriter, read_events
from .failures import failure_message, refuse_config
from .lora import apply_method
from .losses import lm_loss
from .model import compile_layers, count_params, enable_gradient_checkpointing, load_base
from .optim import build_optimizer, get_lr, set_lr
from .paths import data_base_dir, hf_offline
from .status import StatusFile


class Stopped(Exception):
    """Raised when a stop was requested before training started (e.g. during pretraining)."""


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


def _load_base(base: str, pretrain_steps, on_progress, dtype: torch.dtype):
    """model.load_base, with a message that says what to do when an ``hf:`` model is missing."""
    try:
        return load_base(base, pretrain_steps, on_progress, dtype)
    except OSError as e:
        if not base.startswith("hf:"):
            raise
        name = base[3:]
        if hf_offline():
            raise OSError(f"model.base {base}: '{name}' is not a local folder and not in the Hugging Face "
                          f"cache, and HF_HUB_OFFLINE is set, so nothing was downloaded. Use a folder "
                          f"holding config.json, the weights and the tokenizer, or download it first.") from e
        raise OSError(f"model.base {base}: cannot load '{name}' as a local folder or from the Hugging "
                      f"Face Hub: {e}") from e


class Recipe:
    """One run in ``run_dir``. ``stop_after`` stops (as SIGINT would) after that many steps."""

    def __init__(self, run_dir: Path, resume: bool = False, stop_after: int | None = None):
        self.run_dir = Path(run_dir)
        self.resume, self.stop_after = resume, stop_after
        self.rank, self.local_rank, self.world_size = dist_env()
        self.is_main = self.rank == 0
        self.events = EventWriter(self.run_dir) if self.is_main else Silent()
        self.status = StatusFile(self.run_dir) if self.is_main else Silent()
        self.ddp = None  # the DistributedDataParallel wrapper when world_size > 1 without sharding
        self.fsdp = False  # FSDP2-sharded (launcher.sharding fsdp over several processes)
        self.spectra = None  # rank 0's SpectraTracker when spectra are on
        self.stop_requested = False
        self.step = 0

    # ------------------------------------------------------------------ setup

    def setup(self) -> None:
        self.status.start_heartbeat()
        self.status.update(phase="starting")
        self.cfg = cfg = load_config(self.run_dir)
        if self.is_main:  # refuse a bad lm_eval task (unknown, code execution not allowed) before anything loads
            check_evals(cfg.evals, data_base_dir(self.run_dir))
        t = cfg.train
        self.total_steps = t["steps"]
        self.status.update(total_steps=self.total_steps)
        self.device = pick_device(t["device"])
        if self.world_size > 1:
            self.device = dist_utils.init_process_group(self.device, self.local_rank, self.world_size)
            self.fsdp = cfg.launcher.get("sharding") == "fsdp"
        elif cfg.launcher.get("sharding") == "fsdp":
            self.events.emit("log", level="warning",
                             message="launcher.sharding fsdp with one process: nothing to shard, training unsharded")
        self.precision = prec.resolve_precision(t["precision"], self.device)
        warning = prec.warn_cpu_bf16(self.precision, self.device)
        if warning:
            self.events.emit("log", level="warning", message=warning)
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
        if self.world_size > 1 and not self.fsdp:
            self.ddp = dist_utils.wrap_ddp(self.model, self.device)
        device_name = str(self.device)
        if self.device.type == "cuda":
            device_name = f"cuda:{torch.cuda.current_device()} ({torch.cuda.get_device_name()})"
        params = count_params(self.model)  # a DTensor's numel() is the whole tensor's: FSDP counts the same
        self.events.emit(
            "run_started", config=cfg.raw, device=device_name, precision=self.precision,
            method=cfg.method, model=cfg.model["base"], params=params,
            total_steps=self.total_steps, resumed_from=self.resumed_from, world_size=self.world_size)
        if self.is_main:
            spread = f" x {self.world_size} processes{' (FSDP)' if self.fsdp else ''}" if self.world_size > 1 else ""
            print(f"run {cfg.name}: {cfg.method} on {cfg.model['base']} ({device_name}{spread}, {self.precision}"
                  f"{', gradient checkpointing' if t['gradient_checkpointing'] else ''}), "
                  f"{params['trainable']:,} of {params['total']:,} params train", flush=True)

    def _setup_model(self) -> None:
        cfg = self.cfg

        def on_pretrain(step, total, loss, cached):
            self._check_stop_before_training()
            self.events.emit("pretrain", step=step, total_steps=max(total, 1), loss=loss, cached=cached)

        if cfg.model["base"].startswith("builtin:"):
            self.status.update(phase="pretraining")
        if self.world_size > 1 and not self.is_main:
            torch.distributed.barrier()  # rank 0 pretrains (or finds) the base first, reporting progress
        dtype = prec.base_dtype(self.precision, cfg.method)
        model, self.tokenizer = _load_base(cfg.model["base"], cfg.model.get("pretrain_steps"), on_pretrain, dtype)
        if self.world_size > 1 and self.is_main:
            torch.distributed.barrier()
        if cfg.train["gradient_checkpointing"]:
            enable_gradient_checkpointing(model)
        model = apply_method(model, cfg.method, cfg.lora, cfg.train["seed"])
        prec.check_trainable_dtypes(model, self.precision, cfg.method)
        if os.environ.get("FINETUNE_LAB_COMPILE") == "1":
            compile_layers(model)
        if self.fsdp:  # the tracker reads the whole starting weights first; sharding moves each shard to the device
            self.spectra = self._spectra_tracker(model)
            self.model = dist_utils.shard_fsdp(model, self.precision, self.device)
        else:
            self.model = model.to(self.device)
        self.model.train()
        self.autocast = lambda: prec.autocast(self.precision, self.device, sharded=self.fsdp)

    def _setup_observers(self) -> None:
        """Evals and spectra are rank 0's, on its unwrapped model. Under FSDP the weights are
        sharded: every rank evaluates (each forward gathers the layers); the spectra tracker was
        built before sharding (``_spectra_tracker``), and the other ranks walk its matrices with
        rank 0 at each pass so each one is gathered (``_gather_spectra``)."""
        cfg = self.cfg
        self.evaluator = None
        if not self.is_main and not self.fsdp:
            return
        if cfg.evals["learning"] or cfg.evals["forgetting"]:
            from .evals import Evaluator
            self.evaluator = Evaluator(cfg.evals, self.tokenizer, cfg.data["seq_len"], self.device, self.base_dir,
                                       run_dir=self.run_dir, on_log=self._eval_log)
            self.evaluator.autocast_dtype = torch.bfloat16 if self.precision != "fp32" else None
            self.evaluator.sharded = self.fsdp
            self.evaluator.remember_base(self.model)  # still the base here, also when resuming (kl_to_base)
        if not self.fsdp:
            self.spectra = self._spectra_tracker(self.model)

    def _spectra_tracker(self, model):
        """Rank 0's SpectraTracker when spectra are on (it takes W_base's source and the random
        baselines from the starting weights), else None."""
        cfg = self.cfg
        if cfg.spectra["every_steps"] <= 0 or not self.is_main:
            return None
        from .spectra import SpectraTracker
        return SpectraTracker(model, cfg.method, cfg.spectra, cfg.lora, cfg.train["seed"])

    def _gather_spectra(self) -> None:
        """On FSDP ranks other than 0: gather each matrix rank 0's SpectraTracker reads, in its
        order, and drop it."""
        from .spectra import iter_matrices
        for _ in iter_matrices(self.model, self.cfg.method, self.cfg.spectra.get("modules", "all")):
            pass

    def _eval_log(self, level: str, message: str) -> None:
        self.events.emit("log", level=level, message=message)
        print(f"{level}: {message}", flush=True)

    def _maybe_resume(self) -> int | None:
        if not self.resume:
            return None
        found = ckpt.list_checkpoints(self.run_dir)
        if not found:
            self.events.emit("log", level="warning", message="--resume: no checkpoint found, starting from step 0")
            return None
        if self.fsdp:
            state = ckpt.load_sharded_checkpoint(found[-1], self.model, self.optimizer, self.is_main)
        else:
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
        with self.autocast():
            # use_cache=False: training needs no KV cache (transformers builds one by default)
            logits = (self.ddp or self.model)(input_ids=x, use_cache=False).logits  # (B, T, V)
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
        evals_due &= self.evaluator is not None  # rank 0 only (every rank under FSDP)
        spectra_due &= self.spectra is not None or self.fsdp
        if not (evals_due or spectra_due):
            return
        devices = [torch.cuda.current_device()] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            self.model.eval()
            if evals_due:
                self.status.update(phase="evaluating")
                result = self.evaluator.evaluate(self.model, step)
                self.events.emit("eval", **{**result, "step": step})
            if spectra_due and self.spectra is None:
                self._gather_spectra()
            elif spectra_due:
                self.status.update(phase="spectra")
                for payload in self.spectra.compute(self.model, step):
                    self.events.emit("spectrum", **payload)
            if self.fsdp:
                self.model.reshard()  # an eval forward leaves the root's parameters gathered
            self.model.train()
        self.status.update(phase="training")

    def _checkpoint(self) -> None:
        state = {"tokens": self.tokens, "data_position": self.step * self.cfg.train["grad_accum"]}
        keep = self.cfg.checkpoint["keep_last"]
        if self.fsdp:  # every rank: gathering the weights and writing the optimizer shards are collective
            self.status.update(phase="checkpointing")
            path, fmt = ckpt.save_sharded_checkpoint(self.run_dir, self.model, self.optimizer, self.step,
                                                     state, keep, self.is_main)
        elif not self.is_main:
            return
        else:
            self.status.update(phase="checkpointing")
            path, fmt = ckpt.save_checkpoint(self.run_dir, self.model, self.optimizer, self.cfg.method,
                                             self.step, state, keep)
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
                with dist_utils.grad_sync(self.ddp, last_micro_batch=micro == accum - 1):
                    loss = self._loss_step(x, y) / accum
                    loss.backward()
                loss_sum += loss.detach()
            grad_norm = dist_utils.grad_norm_and_clip(params, clip)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.step += 1
            stop_any = self.stop_requested
            if self.world_size > 1:  # every rank: the global loss and tokens, and one stop decision
                loss_sum, step_tokens, stop_any = dist_utils.all_reduce_step(
                    loss_sum, step_tokens, stop_any, self.device, self.world_size)
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
        if isinstance(e, torch.OutOfMemoryError):  # "out of memory at step N", the estimate and what fits
            from .estimate import oom_message
            step = recipe.step + 1 if hasattr(recipe, "optimizer") else None
            message = oom_message(getattr(recipe, "cfg", None), step, getattr(recipe, "device", None), recipe.world_size)
            recipe.step = step or recipe.step  # run_finished and status.json name the step that failed
            recipe.status.update(step=recipe.step)
        with contextlib.suppress(Exception):
            recipe.cleanup("failed", message, tb)
        return 1
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
