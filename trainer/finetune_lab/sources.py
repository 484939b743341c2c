"""Finetunes made by other tools, read as they saved them: a PEFT LoRA adapter (Axolotl,
LLaMA-Factory, Unsloth, TRL and PEFT scripts all write PEFT's format) or a full checkpoint
(transformers' save_pretrained, sharded or not), and the base model they started from.

Nothing here loads a whole model: tensors are read by name, one at a time (base_weights.py), and
an architecture is known from its config alone (a model built on the meta device). Every problem
with the input is a ``SourceError`` that names the file and what was expected.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from .base_weights import WeightFiles, WeightsError, load_pickle_weights
from .module_names import canonical_name
from .paths import hf_offline
from .spectra_math import LoraFactors

ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
_LORA_PARTS = ("lora_A", "lora_B", "lora_embedding_A", "lora_embedding_B", "lora_magnitude_vector")
# What other PEFT methods are, in words, for the refusal (PEFT's PeftType names).
_NOT_LORA = {
    "IA3": "IA3 rescales activations with learned vectors",
    "PREFIX_TUNING": "prefix tuning learns virtual tokens",
    "PROMPT_TUNING": "prompt tuning learns virtual tokens",
    "P_TUNING": "p-tuning learns virtual tokens",
    "ADALORA": "AdaLoRA's ΔW is B·diag(E)·A with a learned, pruned diagonal",
}


class SourceError(ValueError):
    """Input that cannot be analysed (the message says which file and what was expected)."""


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise SourceError(f"{path}: cannot read it ({e})") from e
    except json.JSONDecodeError as e:
        raise SourceError(f"{path}:{e.lineno}:{e.colno}: not valid JSON ({e.msg})") from e
    if not isinstance(value, dict):
        raise SourceError(f"{path}: expected a JSON object")
    return value


def folder_kind(folder: Path) -> str:
    """``adapter`` (adapter_config.json) or ``checkpoint`` (config.json and model weights).

    Raises:
        SourceError: the folder is missing or is neither, naming what it holds.
    """
    if not folder.is_dir():
        raise SourceError(f"{folder}: no such folder")
    if (folder / "adapter_config.json").is_file():
        return "adapter"
    try:
        weights = WeightFiles.find(folder)
    except WeightsError as e:
        raise SourceError(str(e)) from e
    if (folder / "config.json").is_file() and weights is not None:
        return "checkpoint"
    found = sorted(p.name for p in folder.iterdir())
    raise SourceError(
        f"{folder} is neither a PEFT adapter nor a model checkpoint: expected adapter_config.json with "
        f"adapter_model.safetensors (or adapter_model.bin), or config.json with model.safetensors (or the shards "
        f"model-0000x-of-0000n.safetensors and model.safetensors.index.json); it holds "
        f"{', '.join(found[:12]) + (' …' if len(found) > 12 else '') if found else 'nothing'}")


def checkpoint_step(folder: Path) -> int:
    """The optimizer step a checkpoint was saved at: ``trainer_state.json``'s ``global_step``
    (Hugging Face Trainer, TRL, Axolotl), else the number in a ``checkpoint-N`` / ``step-N``
    folder name, else 1."""
    state = folder / "trainer_state.json"
    if state.is_file():
        step = _read_json(state).get("global_step")
        if isinstance(step, int) and step > 0:
            return step
    m = re.fullmatch(r"(?:checkpoint|step)-0*(\d+)", folder.name)
    return int(m.group(1)) if m and int(m.group(1)) > 0 else 1


# ----------------------------------------------------------------------------- adapters

@dataclass
class AdapterModule:
    """One adapted module of an adapter file."""

    module: str                 # canonical module name, e.g. model.layers.0.self_attn.q_proj
    a_key: str
    b_key: str
    magnitude_key: str | None   # DoRA
    embedding: bool             # lora_embedding_A/B: an adapter on an embedding


class Adapter:
    """A PEFT LoRA adapter folder (LoRA, rsLoRA, DoRA; any architecture's target names).

    Args:
        folder (Path): holds adapter_config.json and adapter_model.safetensors (or a .bin,
            unpickled weights-only).

    Raises:
        SourceError: not a LoRA adapter (IA3, prefix tuning... are refused as such), no weights,
            a pickle that is more than tensors, keys that are not PEFT's.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self.config = _read_json(folder / "adapter_config.json")
        peft_type = str(self.config.get("peft_type", "")).upper()
        if peft_type != "LORA":
            why = _NOT_LORA.get(peft_type, "it is not LoRA")
            raise SourceError(
                f"{folder / 'adapter_config.json'}: peft_type is {peft_type or 'missing'}, not LORA: only LoRA "
                f"adapters (LoRA, rsLoRA, DoRA) have a low-rank weight change to analyse; {why}")
        self.weights = self._weights()
        self.modules, self.other = self._modules()
        if not self.modules:
            raise SourceError(f"{self.weights.files[0]}: no LoRA weights (lora_A / lora_B) in it")

    def _weights(self) -> WeightFiles:
        st, binary = (self.folder / n for n in ADAPTER_WEIGHTS)
        if st.is_file():
            return WeightFiles([st])
        if binary.is_file():
            try:
                load_pickle_weights(binary)  # refuses anything but tensors before anything else reads it
                return WeightFiles([binary])
            except WeightsError as e:
                raise SourceError(str(e)) from e
        raise SourceError(f"{self.folder}: adapter_config.json but no adapter_model.safetensors or adapter_model.bin")

    def _modules(self) -> tuple[list[AdapterModule], list[str]]:
        parts: dict[str, dict[str, str]] = {}
        other: list[str] = []
        for key in self.weights.names():
            bits = key.removesuffix(".weight").split(".")
            if bits[-1] not in _LORA_PARTS and len(bits) > 1 and bits[-2] in _LORA_PARTS:
                bits = bits[:-1]  # an adapter name inside the key ("lora_A.default.weight")
            if bits[-1] not in _LORA_PARTS:
                other.append(key)  # modules_to_save, trainable tokens, biases
                continue
            parts.setdefault(canonical_name(".".join(bits[:-1])), {})[bits[-1]] = key
        out = []
        for module, p in parts.items():
            embedding = "lora_embedding_A" in p
            a, b = ("lora_embedding_A", "lora_embedding_B") if embedding else ("lora_A", "lora_B")
            if a not in p or b not in p:
                raise SourceError(f"{self.weights.files[0]}: {module} has {' and '.join(sorted(p))} but not both {a} and {b}")
            out.append(AdapterModule(module, p[a], p[b], p.get("lora_magnitude_vector"), embedding))
        return out, other

    @property
    def variant(self) -> str:
        """``dora`` | ``rslora`` | ``lora``, as the experiment file's ``lora.variant`` says it."""
        return "dora" if self.config.get("use_dora") else "rslora" if self.config.get("use_rslora") else "lora"

    @property
    def base_name(self) -> str | None:
        """``base_model_name_or_path`` as the tool that trained it wrote it."""
        name = self.config.get("base_model_name_or_path")
        return name if isinstance(name, str) and name else None

    def rank_of(self, m: AdapterModule) -> int:
        return int(self.weights.shape(m.a_key)[0])

    def scale_of(self, m: AdapterModule) -> float:
        """PEFT's ``scaling``: alpha/r, or alpha/√r with rsLoRA; alpha from ``alpha_pattern`` when
        a pattern matches the module (peft's own ``get_pattern_key``), r from the weights."""
        from peft.utils.other import get_pattern_key
        alpha = float(self.config.get("lora_alpha", 8))
        patterns = self.config.get("alpha_pattern") or {}
        if patterns:
            alpha = float(patterns.get(get_pattern_key(list(patterns), m.module), alpha))
        r = self.rank_of(m)
        return alpha / math.sqrt(r) if self.config.get("use_rslora") else alpha / r

    def factors(self, m: AdapterModule) -> LoraFactors:
        """A [r, in], B [out, r], scale and DoRA magnitude [out] of one module (read now)."""
        mag = self.weights.get(m.magnitude_key).flatten() if m.magnitude_key else None
        return LoraFactors(self.weights.get(m.a_key), self.weights.get(m.b_key), self.scale_of(m), mag)

    def delta_shape(self, m: AdapterModule) -> tuple[int, int]:
        """[out, in] of the change this module's factors make."""
        return int(self.weights.shape(m.b_key)[0]), int(self.weights.shape(m.a_key)[1])

    def summary(self) -> dict:
        """The analysis config's ``lora`` section: rank (the most common r), alpha, variant, targets."""
        ranks = [self.rank_of(m) for m in self.modules if not m.embedding] or [int(self.config.get("r", 8))]
        targets = self.config.get("target_modules")
        return {"rank": max(set(ranks), key=ranks.count), "alpha": float(self.config.get("lora_alpha", 8)),
                "variant": self.variant,
                "target_modules": targets if isinstance(targets, str) else sorted(targets) if isinstance(targets, list)
                else sorted({m.module.split(".")[-1] for m in self.modules})}


# ----------------------------------------------------------------------------- checkpoints

class Checkpoint:
    """A full checkpoint folder: config.json and model weights (one file or shards + index).

    Raises:
        SourceError: no weights, or an index that names a missing shard.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self.config = _read_json(folder / "config.json")
        try:
            files = WeightFiles.find(folder)
        except WeightsError as e:
            raise SourceError(str(e)) from e
        if files is None:
            raise SourceError(f"{folder}: config.json but no model.safetensors, shards with an index, or pytorch_model.bin")
        self.weights = files
        self.step = checkpoint_step(folder)


# ----------------------------------------------------------------------------- the base

def hub_folder(name: str) -> Path:
    """The local snapshot of a Hugging Face Hub model: from the cache, downloading what is
    missing (config, safetensors, tokenizer; pickle weights only when there are no safetensors)
    unless HF_HUB_OFFLINE is set.

    Raises:
        SourceError: not in the cache while offline, or not downloadable.
    """
    from huggingface_hub import snapshot_download
    wanted = ["*.json", "*.safetensors", "tokenizer*", "*.model", "*.txt", "*.tiktoken"]
    try:
        folder = Path(snapshot_download(name, local_files_only=hf_offline(), allow_patterns=wanted))
        if WeightFiles.find(folder) is None:
            folder = Path(snapshot_download(name, local_files_only=hf_offline(), allow_patterns=wanted + ["*.bin"]))
    except Exception as e:
        if hf_offline():
            raise SourceError(f"--base hf:{name}: '{name}' is not a local folder and not in the Hugging Face cache, and "
                              f"HF_HUB_OFFLINE is set, so nothing was downloaded. Use a folder holding config.json and the "
                              f"weights, or download it first (huggingface-cli download {name}).") from e
        raise SourceError(f"--base hf:{name}: cannot find '{name}' as a local folder or on the Hugging Face Hub: "
                          f"{str(e).splitlines()[0]}") from e
    return folder


@dataclass
class Base:
    """The model a finetune started from: its weights by name and its architecture.

    Args:
        ref (str): builtin:<size> or hf:<name or folder>, as model.base says it.
        folder (Path): where its config and weights are.
        weights (WeightFiles): its weights, read one tensor at a time.
        classes (dict[str, str]): module name -> class name (Linear, Conv1D, Embedding...), from
            the config on the meta device; empty when that cannot be built (custom code).
        pretrain_steps (int | None): built-in bases only: the cached base's pretraining steps.
    """

    ref: str
    folder: Path
    weights: WeightFiles
    classes: dict[str, str]
    pretrain_steps: int | None = None

    def class_of(self, module: str) -> str | None:
        """The module's class, tolerant of the prefix differences WeightFiles.resolve allows."""
        key = self.weights.resolve(module + ".weight")
        for name in (module, key.removesuffix(".weight") if key else None):
            if name and name in self.classes:
                return self.classes[name]
        short = module.split(".", 1)[1] if "." in module else module
        return next((c for n, c in self.classes.items() if n == short or n.endswith("." + short)), None)

    def matrix(self, module: str) -> tuple[str, tuple[int, int], bool] | None:
        """(stored key, [out, in] shape, stored transposed) of a module's weight, or None when
        the base has no 2-D weight by that name. GPT-2's Conv1D stores [in, out]."""
        key = self.weights.resolve(module + ".weight")
        if key is None or len(self.weights.shape(key)) != 2:
            return None
        rows, cols = self.weights.shape(key)
        transposed = self.class_of(module) == "Conv1D"
        return key, ((cols, rows) if transposed else (rows, cols)), transposed

    def w(self, module: str) -> torch.Tensor:
        """W_base [out, in] of a module, read now (CPU, stored dtype)."""
        key, _, transposed = self.matrix(module)
        t = self.weights.get(key)
        return t.T if transposed else t


def _classes(config) -> dict[str, str]:
    """Module name -> class name of the model a config describes, built on the meta device (no memory)."""
    try:
        from transformers import AutoModelForCausalLM
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
        return {n: type(m).__name__ for n, m in model.named_modules() if n}
    except Exception:
        return {}


def resolve_base(ref: str, pretrain_steps: int | None = None) -> Base:
    """The base named by ``--base`` / ``model.base``.

    Args:
        ref (str): builtin:<size> (its cached pretrained weights, pretrained now if missing) or
            hf:<local folder or Hub name> (the Hugging Face cache; HF_HUB_OFFLINE respected).
        pretrain_steps (int | None): built-in only: which cached pretraining (model.pretrain_steps).

    Raises:
        SourceError: an unknown kind, size, folder or name.
    """
    kind, _, name = ref.partition(":")
    if kind == "builtin":
        from .builtin import builtin_config
        from .paths import cache_dir
        from .pretrain import cache_key, pretrain_settings, pretrained_builtin
        try:
            settings = pretrain_settings(name, pretrain_steps)
        except ValueError as e:
            raise SourceError(f"--base {ref}: {e} (builtin:tiny | small | 125m | 350m)") from e
        folder = cache_dir() / "bases" / cache_key(name, settings)
        if not (folder / "model.safetensors").exists():
            pretrained_builtin(name, steps=pretrain_steps)  # once, cached: the base every run of it starts from
        return Base(ref, folder, WeightFiles([folder / "model.safetensors"]), _classes(builtin_config(name)), pretrain_steps)
    if kind != "hf" or not name:
        raise SourceError(f"--base must be builtin:<size> or hf:<name or folder>, got '{ref}'")
    local = Path(name).expanduser()
    folder = local if local.is_dir() else hub_folder(name)
    builtin = re.fullmatch(r"(tiny|small|125m|350m)-[0-9a-f]{16}", folder.name)
    if builtin and (folder / "pretrain.json").is_file() and (folder / "model.safetensors").is_file():
        # A Finetune Lab built-in base in its cache (an adapter trained here names it as its
        # base_model_name_or_path): the same base as builtin:<size> with those pretraining steps.
        steps = _read_json(folder / "pretrain.json").get("steps")
        from .builtin import builtin_config
        return Base(f"builtin:{builtin.group(1)}", folder, WeightFiles([folder / "model.safetensors"]),
                    _classes(builtin_config(builtin.group(1))), steps if isinstance(steps, int) else None)
    if not (folder / "config.json").is_file():
        raise SourceError(f"--base {ref}: {folder} has no config.json: not a transformers model folder")
    try:
        weights = WeightFiles.find(folder)
    except WeightsError as e:
        raise SourceError(f"--base {ref}: {e}") from e
    if weights is None:
        raise SourceError(f"--base {ref}: {folder} has config.json but no model weights (model.safetensors, shards "
                          f"with model.safetensors.index.json, or pytorch_model.bin)")
    from transformers import AutoConfig
    try:
        config = AutoConfig.from_pretrained(folder)
    except Exception as e:
        raise SourceError(f"--base {ref}: {folder / 'config.json'}: {str(e).splitlines()[0]}") from e
    return Base(ref, folder, weights, _classes(config))
