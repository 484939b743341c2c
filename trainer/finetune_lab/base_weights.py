"""Weights read one tensor at a time from the files a model was saved in, so that an analysis of
a 7B model never holds more than one matrix of it in memory.

``WeightFiles`` reads a checkpoint folder as transformers saves it: ``model.safetensors``, or
shards ``model-0000x-of-0000n.safetensors`` with ``model.safetensors.index.json`` (memory-mapped
through safetensors' ``safe_open``); or the older ``pytorch_model.bin`` (sharded the same way),
loaded with ``torch.load(weights_only=True, mmap=True)`` — never unpickling arbitrary objects.
``SnapshotWeights`` writes tensors into a temporary safetensors file one at a time and reads
them back the same way: the exact copy of a base whose own files cannot serve (a model built in
memory, a base whose names changed on load).
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
import weakref
from pathlib import Path

import torch
from safetensors import safe_open

SAFETENSORS_INDEX = "model.safetensors.index.json"
BIN_INDEX = "pytorch_model.bin.index.json"


class WeightsError(ValueError):
    """A weights file that cannot be read as asked (the message names the file)."""


def load_pickle_weights(path: Path | str, mmap: bool = False) -> dict[str, torch.Tensor]:
    """A ``.bin`` state dict, unpickled weights-only (tensors and plain containers, no code).

    Raises:
        WeightsError: the file holds anything else (a pickle that would run code is refused).
    """
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True, mmap=mmap)
    except RuntimeError as e:
        if mmap and "mmap" in str(e):  # the legacy (pre-zip) format cannot be mapped
            return load_pickle_weights(path, mmap=False)
        raise WeightsError(f"{path}: refused: not loadable weights-only ({str(e).splitlines()[0]}); "
                           "only tensors are read from pickle files, never code") from e
    except Exception as e:  # UnpicklingError and friends: anything beyond tensors
        raise WeightsError(f"{path}: refused: not loadable weights-only ({str(e).splitlines()[0]}); "
                           "only tensors are read from pickle files, never code") from e
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: not a state dict of tensors")
    return state


class WeightFiles:
    """The tensors of one saved model or adapter, by name, read one at a time.

    Args:
        files (list[Path]): the weight files (every shard).
        index (dict[str, Path] | None): tensor name -> file (a sharded checkpoint's index);
            None: read each file's own list of names.
    """

    def __init__(self, files: list[Path], index: dict[str, Path] | None = None):
        self.files = [Path(f) for f in files]
        self._where: dict[str, Path] = {}
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._bin_cache: tuple[Path, dict] | None = None  # the one .bin shard mapped now
        self._prefixes: list[str] | None = None
        for f in self.files:
            if f.suffix == ".safetensors":
                with safe_open(str(f), framework="pt") as h:
                    for k in h.keys():
                        self._where[k] = f
                        self._shapes[k] = tuple(h.get_slice(k).get_shape())
            else:
                for k, v in self._bin(f).items():
                    self._where[k] = f
                    self._shapes[k] = tuple(v.shape)
        if index is not None:
            missing = sorted(set(index) - set(self._where))
            if missing:
                raise WeightsError(f"the index names {missing[0]} in {index[missing[0]].name}, which does not hold it")

    @classmethod
    def find(cls, folder: Path | str) -> "WeightFiles | None":
        """The model weights in ``folder`` (safetensors first, then pickle ``.bin``), or None.

        Raises:
            WeightsError: an index that names a missing shard.
        """
        folder = Path(folder)
        for index_name, single in ((SAFETENSORS_INDEX, "model.safetensors"), (BIN_INDEX, "pytorch_model.bin")):
            index_path = folder / index_name
            if index_path.is_file():
                weight_map = json.loads(index_path.read_text(encoding="utf-8")).get("weight_map") or {}
                shards = sorted({folder / s for s in weight_map.values()})
                absent = [s.name for s in shards if not s.is_file()]
                if absent:
                    raise WeightsError(f"{index_path} names shard {absent[0]}, which is not in {folder}")
                return cls(shards, {k: folder / v for k, v in weight_map.items()})
            if (folder / single).is_file():
                return cls([folder / single])
        return None

    def names(self) -> list[str]:
        """Every tensor name, in file order."""
        return list(self._where)

    def __contains__(self, name: str) -> bool:
        return name in self._where

    def resolve(self, key: str) -> str | None:
        """The stored name of a model's state-dict ``key``: itself, or the same name without a
        wrapper prefix (PEFT ``base_model.model.``, ``module.``, ``_orig_mod.``) or with the
        files' top-level prefix added or removed (GPT-2's hub files say ``h.0...``, a saved
        ``GPT2LMHeadModel`` says ``transformer.h.0...``). None when it is not there."""
        from .module_names import canonical_name
        key = canonical_name(key)
        if key in self._where:
            return key
        candidates = [key.split(".", 1)[1]] if "." in key else []
        if self._prefixes is None:
            self._prefixes = sorted({n.split(".", 1)[0] for n in self._where if "." in n})
        candidates += [f"{p}.{key}" for p in self._prefixes]
        for c in candidates:
            if c in self._where:
                return c
        return None

    def shape(self, name: str) -> tuple[int, ...]:
        """The tensor's shape, from the file headers (nothing is read)."""
        return self._shapes[name]

    def get(self, name: str) -> torch.Tensor:
        """One tensor, on the CPU in its stored dtype. Only this tensor is read (a safetensors
        file is memory-mapped and closed again; a .bin shard stays mapped until another is read)."""
        f = self._where[name]
        if f.suffix == ".safetensors":
            with safe_open(str(f), framework="pt") as h:
                return h.get_tensor(name)
        return self._bin(f)[name]

    def _bin(self, f: Path) -> dict:
        if self._bin_cache is None or self._bin_cache[0] != f:
            self._bin_cache = (f, load_pickle_weights(f, mmap=True))
        return self._bin_cache[1]


# safetensors' dtype names (https://github.com/huggingface/safetensors, format: header of
# {name: {dtype, shape, data_offsets}}, 8-byte little-endian length first).
_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64"}


class SnapshotWeights:
    """A private, exact copy of some tensors in one temporary safetensors file, written one
    tensor at a time (the header first, from the shapes) and memory-mapped when read, so neither
    writing nor reading holds more than one tensor. Deleted when this object is.

    Args:
        specs (list[tuple[str, tuple[int, ...], torch.dtype]]): name, shape, dtype of each tensor.
        folder (Path | None): where the file goes (default: the system's temporary folder).
    """

    def __init__(self, specs: list[tuple[str, tuple[int, ...], torch.dtype]], folder: Path | None = None):
        header, offset = {}, 0
        for name, shape, dtype in specs:
            if dtype not in _DTYPES:
                raise WeightsError(f"cannot snapshot {name}: dtype {dtype}")
            size = int(torch.Size(shape).numel()) * torch.empty((), dtype=dtype).element_size()
            header[name] = {"dtype": _DTYPES[dtype], "shape": list(shape), "data_offsets": [offset, offset + size]}
            offset += size
        blob = json.dumps(header, separators=(",", ":")).encode()
        blob += b" " * (-len(blob) % 8)  # the data starts 8-byte aligned
        if folder is not None:
            Path(folder).mkdir(parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(suffix=".safetensors", prefix="finetune-lab-base-", dir=folder)
        self.path = Path(path)
        self._finalizer = weakref.finalize(self, _unlink, path)
        self._file = os.fdopen(fd, "wb")
        self._file.write(struct.pack("<Q", len(blob)) + blob)
        self._order = [name for name, _, _ in specs]
        self._next = 0
        self._reader: WeightFiles | None = None

    def write(self, name: str, tensor: torch.Tensor) -> None:
        """Append the next tensor (in the order of ``specs``)."""
        if self._order[self._next] != name:
            raise WeightsError(f"snapshot: expected {self._order[self._next]}, got {name}")
        t = tensor.detach().contiguous().cpu()
        self._file.write(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        self._next += 1
        if self._next == len(self._order):
            self._file.close()
            self._reader = WeightFiles([self.path])

    def get(self, name: str) -> torch.Tensor:
        if self._reader is None:
            raise WeightsError("snapshot read before every tensor was written")
        return self._reader.get(name)

    def close(self) -> None:
        """Delete the file now."""
        if not self._file.closed:
            self._file.close()
        self._finalizer()


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
