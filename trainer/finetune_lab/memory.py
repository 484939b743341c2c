"""How much memory a run needs per device, worked out from the model's shape (model_shape.py)
and the run's settings, before anything is loaded.

Four parts, in bytes per device:

- **weights**: the parameters in the dtype they are held in (fp32; bf16 for LoRA's frozen base
  in a bf16 mode and for everything in bf16-true), plus, in bf16-mixed, the bf16 copy of every
  linear weight that autocast makes in the forward and autograd keeps for the backward.
- **gradients**: one per trained parameter, in its dtype; DDP (several processes, no sharding)
  keeps a second copy in its all-reduce buckets (``gradient_as_bucket_view=False``, PyTorch's
  default: "the saved memory size will be equal to the total gradients size" when it is on).
- **optimizer**: AdamW two states per trained parameter (exp_avg, exp_avg_sq), Lion one, in the
  parameter's dtype.
- **activations**: what autograd saves for the backward, plus the loss's first backward step
  (``activation_bytes``).

FSDP2 (``launcher.sharding: fsdp``) divides weights, gradients and optimizer states by the number
of processes and adds what is gathered at once: two decoder layers (the one computing and the one
prefetched), the root's own parameters (embeddings, head) and one layer's unsharded gradient. In
bf16-mixed it is FSDP's MixedPrecisionPolicy (bf16 gathered parameters, no autocast copy), so its
activations are bf16-true's.

The peak is not the sum of the four: with one micro-batch per step the gradients appear while the
activations are freed. It is weights + optimizer + the larger of (activations + the output head's
gradient, which is made first) and (all gradients + the optimizer step's temporaries); with
gradient accumulation the previous micro-batches' gradients stay, so it is the plain sum.
"""

from __future__ import annotations

from dataclasses import dataclass

from .model_shape import LoraShape, ModelShape

GIB = 2 ** 30
FP32, BF16 = 4, 2
MODES = ("fp32", "bf16-mixed", "bf16-true")


@dataclass(frozen=True)
class Plan:
    """The settings of one run that change its memory.

    Attributes:
        method (str): lora | full.
        precision (str): fp32 | bf16-mixed | bf16-true (``auto`` already resolved).
        device (str): cuda | cpu (dropout masks are 1 byte on CUDA, a float on the CPU).
        batch_size (int): sequences per process per micro-batch.
        seq_len (int): tokens per sequence.
        grad_accum (int): micro-batches per optimizer step.
        gradient_checkpointing (bool): recompute each decoder layer in the backward.
        optimizer (str): adamw | lion.
        world_size (int): processes (one per GPU).
        fsdp (bool): FSDP2 sharding over the processes.
        lora_dropout (float): LoRA's dropout (each adapter then keeps its own copy of its input).
    """

    method: str
    precision: str
    device: str
    batch_size: int
    seq_len: int
    grad_accum: int = 1
    gradient_checkpointing: bool = False
    optimizer: str = "adamw"
    world_size: int = 1
    fsdp: bool = False
    lora_dropout: float = 0.0

    @property
    def autocast(self) -> bool:
        """bf16 autocast runs the forward (bf16-mixed without FSDP's own mixed precision)."""
        return self.precision == "bf16-mixed" and not self.fsdp

    @property
    def compute(self) -> int:
        """Bytes of an element in the matmuls and the attention."""
        return FP32 if self.precision == "fp32" else BF16

    @property
    def trained(self) -> int:
        """Bytes of a trained parameter, its gradient and its optimizer states."""
        return BF16 if self.precision == "bf16-true" and self.method == "full" else FP32

    @property
    def base(self) -> int:
        """Bytes of a parameter of the (for LoRA frozen) base model."""
        if self.precision == "fp32" or (self.precision == "bf16-mixed" and self.method == "full"):
            return FP32
        return BF16

    @property
    def residual(self) -> int:
        """Bytes of an element of the residual stream (the embedding's dtype, kept by autocast)."""
        if self.fsdp and self.precision != "fp32":
            return BF16  # FSDP casts the gathered parameters, embedding included, to bf16
        return self.base


def layer_activation_bytes(m: ModelShape, lora: LoraShape | None, p: Plan) -> float:
    """Bytes that autograd keeps for one decoder layer, per token.

    The accounting of Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large
    Transformer Models", arXiv 2205.05198, §4.1: sbh(34 + 5as/h) bytes for a GPT layer in 16-bit),
    redone tensor by tensor for the decoder layer of transformers' Llama family (RMSNorm, SDPA,
    SwiGLU MLP, no dropout), and for what PEFT's LoRA layers and autocast add. Per token, with h
    the hidden size, i the MLP width, q and kv the query and key/value widths, n the heads, c the
    compute bytes (4 fp32, 2 bf16), r the residual stream's bytes:

    - each RMSNorm (2): its input upcast to fp32 (4h) and 1/rms (4); when its weight trains
      (full) also the normalised input (r·h) and its output as the next linear's input (r·h in
      fp32 and bf16-true, where q, k, v share it; under autocast one bf16 cast per linear that
      reads it: 3 after the first norm, 2 after the second, 2h each);
    - attention (SDPA's flash / memory-efficient kernels, never the s×s matrix): q and the output
      (c·q each), k and v after RoPE (c·kv each, grouped-query heads not repeated), logsumexp (4n);
    - MLP: gate's output, SiLU's output, up's output (3c·i), and when down_proj trains its input,
      the product (c·i);
    - LoRA: per adapter, lora_A's input (its own dropout output: 4 bytes, or a 2-byte autocast
      cast, per input feature; without dropout the shared input once in fp32, one cast per
      adapter in bf16) plus the dropout mask (1 byte on CUDA, 4 on the CPU, where dropout keeps
      a float mask), and lora_B's input (4 or 2 bytes per rank).

    With fp32 everything this is 4(8h + 4i + 2q + 2kv) + 4n + 8 bytes for full finetuning: the
    same order as Korthikanti's 34h in 16-bit, which counts a GPT MLP of width 4h and dropout.
    Checked tensor by tensor against autograd's saved tensors (``torch.autograd.graph.
    saved_tensors_hooks``) for full and LoRA in fp32, bf16-mixed and bf16-true: exact on the CPU.

    Returns:
        float: bytes per token (multiply by batch_size * seq_len).
    """
    h, i, c = m.hidden, m.intermediate, p.compute
    full = p.method == "full"
    norms = 2 * (FP32 * h + FP32)
    if full:
        norms += 2 * p.residual * h  # the normalised input, for the norm weight's gradient
        norms += 5 * BF16 * h if p.autocast else 2 * p.residual * h  # the linears' input(s)
    attention = c * (2 * m.q_dim + 2 * m.kv_dim) + FP32 * m.heads
    mlp = 3 * c * i + (c * i if full else 0)
    adapters = 0.0
    if lora is not None and not full:
        a_in = BF16 if p.autocast else FP32  # lora_A's saved input (adapters are fp32)
        if p.lora_dropout > 0:
            mask = 1 if p.device == "cuda" else FP32
            adapters = (a_in + mask) * lora.in_features
        elif p.precision == "fp32":
            adapters = FP32 * lora.shared_in_features
        else:  # bf16 base: each adapter casts its input (autocast to bf16, PEFT to fp32)
            adapters = a_in * lora.in_features
        adapters = (adapters + a_in * lora.ranks) / m.layers
    return norms + attention + mlp + adapters


def head_activation_bytes(m: ModelShape, p: Plan) -> float:
    """Bytes per token that autograd keeps outside the decoder layers: the final norm (as a
    layer's), the head's input when the head trains, and cross-entropy's fp32 log-probabilities
    (4V: the loss upcasts the logits to fp32 first, losses.lm_loss)."""
    full = p.method == "full"
    norm = FP32 * m.hidden + FP32 + (2 * p.residual * m.hidden if full else 0)
    if full and p.autocast:
        norm += BF16 * m.hidden - p.residual * m.hidden  # the head reads a bf16 cast instead
    return norm + FP32 * m.vocab


def saved_activation_bytes(m: ModelShape, lora: LoraShape | None, p: Plan) -> float:
    """What autograd holds at the end of one micro-batch's forward, in bytes per device.

    Without gradient checkpointing every layer's saved tensors (``layer_activation_bytes``); with
    it (transformers' non-reentrant checkpoint per decoder layer) only each layer's input (r·h
    per token)."""
    per_layer = p.residual * m.hidden if p.gradient_checkpointing else layer_activation_bytes(m, lora, p)
    return p.batch_size * p.seq_len * (m.layers * per_layer + head_activation_bytes(m, p))


def activation_bytes(m: ModelShape, lora: LoraShape | None, p: Plan) -> float:
    """Activation memory at its peak, the start of the backward, in bytes per device: the saved
    tensors, plus the loss's first backward step (the gradient of the log-probabilities and of
    the logits, both fp32: 8V per token), plus with gradient checkpointing the one layer being
    recomputed."""
    working = 2 * FP32 * m.vocab
    if p.gradient_checkpointing:
        working += layer_activation_bytes(m, lora, p)
    return saved_activation_bytes(m, lora, p) + p.batch_size * p.seq_len * working


def components(m: ModelShape, lora: LoraShape | None, p: Plan) -> dict:
    """The four parts and the peak, in bytes per device.

    Returns:
        dict: weights, gradients, optimizer, activations, total (the peak, see the module
        docstring), copies (autocast's weight copies, part of weights), params, trainable,
        notes (list of str: what the numbers assume).
    """
    full = p.method == "full"
    trainable = m.params if full or lora is None else lora.params
    notes: list[str] = []
    weights = trainable * p.trained if full else m.params * p.base + trainable * FP32
    copies = 0.0
    if p.autocast:  # autocast's bf16 copy of each linear weight, kept for the backward ...
        if p.gradient_checkpointing:  # ... except inside checkpointed layers: the head's, and one layer's
            copies = BF16 * (m.head_params + m.layer_params) if full else 0.0
        else:
            copies = BF16 * (m.matmul_params if full else lora.params_matmul)
    gradients = trainable * p.trained
    head_gradient = m.head_params * p.trained if full else 0
    states = {"adamw": 2, "lion": 1}.get(p.optimizer, 2)
    optimizer = states * trainable * p.trained
    # the CPU's AdamW / our Lion make per-parameter temporaries; CUDA's fused AdamW none
    step_temp = 2 * p.trained * min(trainable, m.largest_param) if (p.device != "cuda" or p.optimizer == "lion") else 0
    activations = activation_bytes(m, lora, p)
    world = max(1, p.world_size)
    if p.fsdp and world > 1:
        weights, gradients, optimizer, head_gradient = (x / world for x in (weights, gradients, optimizer, head_gradient))
        gathered_dtype = BF16 if p.precision != "fp32" else FP32
        root = m.params - m.layers * m.layer_params  # embeddings, final norm, head: gathered all along
        weights += gathered_dtype * (2 * m.layer_params + root)
        gradients += FP32 * m.layer_params  # one layer's unsharded gradient before reduce-scatter
        notes.append(f"FSDP over {world} processes: weights, gradients and optimizer states sharded; "
                     "two gathered layers and the embeddings/head in full")
    elif world > 1 and trainable:
        gradients *= 2
        notes.append("DDP keeps a second copy of the gradients in its all-reduce buckets")
    if copies:
        notes.append(f"weights include autocast's bf16 copy of the linear weights ({copies / GIB:.2f} GiB)")
    weights_total = weights + copies
    if p.grad_accum > 1:
        peak = weights_total + gradients + optimizer + activations
    else:
        peak = weights + optimizer + max(copies + activations + head_gradient, gradients + step_temp)
        notes.append("one micro-batch per step: gradients are made while activations are freed, so the "
                     "total is below the sum of the parts")
    return {"weights": weights_total, "gradients": gradients, "optimizer": optimizer,
            "activations": activations, "total": peak, "copies": copies, "params": m.params,
            "trainable": trainable, "notes": notes}
