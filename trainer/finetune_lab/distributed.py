"""Several processes: torchrun's environment, the process group, and how the model is spread
over the ranks, DDP (``launcher.sharding: none``) or FSDP2 (``launcher.sharding: fsdp``).

DDP replicates the model and all-reduces gradients once per optimizer step. FSDP2
(``torch.distributed.fsdp.fully_shard``) shards parameters, gradients and optimizer states:
each decoder layer is its own group (all-gathered just before its forward and backward,
resharded after), then the root takes what is left (embeddings, final norm, head). Both average
gradients over ranks, so a step is the same update either way (tests/test_fsdp.py).

Rank 0 alone writes the run folder; under FSDP every rank still takes part in what needs the
weights (evals, spectra, checkpoints), since gathering a shard is a collective.
"""

from __future__ import annotations

import contextlib
import datetime
import os

import torch
from torch import nn

from .model import decoder_layers


class Silent:
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


def init_process_group(device: torch.device, local_rank: int, world_size: int) -> torch.device:
    """Join torchrun's process group (nccl on CUDA, gloo on CPU). Returns this rank's device."""
    import torch.distributed as dist
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    if not dist.is_initialized():
        # generous timeout: other ranks wait while rank 0 pretrains a base or evaluates
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo",
                                timeout=datetime.timedelta(hours=2))
    if dist.get_world_size() != world_size:
        raise RuntimeError(f"WORLD_SIZE={world_size} but the process group has {dist.get_world_size()}")
    return device


def shard_fsdp(model: nn.Module, mode: str, device: torch.device) -> nn.Module:
    """FSDP2 over every rank: ``fully_shard`` each decoder layer, then the root. The parameters
    move to ``device`` as they are sharded, so no GPU ever holds the whole model.

    Args:
        model (nn.Module): the model on the CPU, in its training dtype.
        mode (str): the precision mode (precision.py). bf16-mixed: fp32 sharded master weights,
            gathered and computed in bf16, gradients reduced in fp32; bf16-true: gradients reduced
            in fp32 too (then kept in bf16); fp32: everything fp32.
        device (torch.device): this rank's device.

    Returns:
        nn.Module: the same model, sharded in place.
    """
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
    mesh = init_device_mesh(device.type, (torch.distributed.get_world_size(),))
    if mode == "bf16-mixed":
        mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    elif mode == "bf16-true":
        mp = MixedPrecisionPolicy(reduce_dtype=torch.float32)
    else:
        mp = MixedPrecisionPolicy()
    for layer in decoder_layers(model):
        fully_shard(layer, mesh=mesh, mp_policy=mp)
    fully_shard(model, mesh=mesh, mp_policy=mp)
    return model


def wrap_ddp(model: nn.Module, device: torch.device) -> nn.Module:
    """DistributedDataParallel: broadcasts rank 0's weights once, then all-reduces gradients.
    The only buffers (rotary frequencies) are constants, so no per-step buffer broadcast."""
    from torch.nn.parallel import DistributedDataParallel
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                   broadcast_buffers=False)


def grad_sync(ddp: nn.Module | None, last_micro_batch: bool):
    """DDP: all-reduce gradients only on the last micro-batch of a step (``no_sync`` before).
    FSDP reduce-scatters every micro-batch: skipping it would keep whole unsharded gradients on
    every rank, the memory FSDP is there to save."""
    if ddp is not None and not last_micro_batch:
        return ddp.no_sync()
    return contextlib.nullcontext()


def grad_norm_and_clip(params: list[torch.Tensor], max_norm: float) -> torch.Tensor:
    """The total gradient norm over all ranks' shards, and clipping to ``max_norm`` (0: none).

    Under FSDP each rank holds a shard of every gradient (a DTensor), so the norm of its shards
    is a partial result: ``full_tensor()`` reduces it to the norm of the whole gradient (as
    torchtitan does), the same number DDP sees. Returns that norm as a 0-dim tensor (no sync).
    """
    norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
    if hasattr(norm, "full_tensor"):
        norm = norm.full_tensor()
    if max_norm > 0:
        torch.nn.utils.clip_grads_with_norm_(params, max_norm, norm)
    return norm


def all_reduce_step(loss_sum, step_tokens: int, stop: bool, device: torch.device, world_size: int):
    """One small all-reduce per step: mean loss over ranks, total target tokens, any stop."""
    import torch.distributed as dist
    stats = torch.cat([torch.as_tensor(loss_sum, dtype=torch.float64, device=device).reshape(1),
                       torch.tensor([step_tokens, float(stop)], dtype=torch.float64, device=device)])
    dist.all_reduce(stats)
    tokens, stops = stats[1:].tolist()
    return stats[0] / world_size, int(tokens), stops > 0


def barrier() -> None:
    import torch.distributed as dist
    if dist.is_initialized():
        dist.barrier()
