"""Reading an FSDP run's sharded optimizer state (torch.distributed.checkpoint) without running code.

DCP keeps its tensors in its own files, but its ``.metadata`` file is a pickle, and
``FileSystemReader.read_metadata`` reads it with ``pickle.load``: a crafted checkpoint in a run
folder could run anything on resume. ``SafeFileSystemReader`` reads the same file with an unpickler
that builds only what DCP's metadata is made of — its own classes (``torch.distributed.checkpoint``),
torch's dtypes, sizes, layouts and memory formats, and plain containers — and refuses every other
global, as ``torch.load(weights_only=True)`` does for trainer_state.pt (checkpoint.py).
"""

from __future__ import annotations

import io
import pickle

import torch
from torch.distributed.checkpoint import FileSystemReader
from torch.distributed.checkpoint.metadata import Metadata, StorageMeta

# Globals a DCP metadata pickle names besides DCP's own classes (seen in torch 2.15's files).
_ALLOWED = {
    ("torch", "Size"), ("torch", "device"),
    ("torch.serialization", "_get_layout"),
    ("pathlib", "PosixPath"), ("pathlib", "PurePosixPath"),  # StorageMeta.checkpoint_id  # how torch pickles a torch.layout: a lookup among torch's layouts
    ("collections", "OrderedDict"), ("builtins", "object"), ("builtins", "set"), ("builtins", "frozenset"),
    ("copyreg", "_reconstructor"), ("builtins", "slice"),
}
_TORCH_ENUMS = (torch.dtype, torch.layout, torch.memory_format)


class _MetadataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if module.startswith("torch.distributed.checkpoint"):
            return super().find_class(module, name)
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        if module == "torch" and isinstance(getattr(torch, name, None), _TORCH_ENUMS):
            return getattr(torch, name)  # torch.float32, torch.strided, torch.contiguous_format, ...
        raise pickle.UnpicklingError(f"DCP metadata names {module}.{name}, which a checkpoint's metadata never holds")


def load_metadata(data: bytes) -> Metadata:
    """A DCP ``.metadata`` file's contents, built by the restricted unpickler.

    Raises:
        pickle.UnpicklingError: the file names a global outside DCP's metadata.
    """
    metadata = _MetadataUnpickler(io.BytesIO(data)).load()
    if not isinstance(metadata, Metadata):
        raise pickle.UnpicklingError(f"DCP metadata is a {type(metadata).__name__}, not a Metadata")
    return metadata


class SafeFileSystemReader(FileSystemReader):
    """``FileSystemReader`` whose metadata is read by ``load_metadata`` instead of ``pickle.load``."""

    def read_metadata(self, *args, **kwargs) -> Metadata:
        path = self._get_metadata_path(kwargs.get("rank"))
        with self.fs.create_stream(path, "rb") as f:
            metadata = load_metadata(f.read())
        if getattr(metadata, "storage_meta", None) is None:
            metadata.storage_meta = StorageMeta()
        metadata.storage_meta.load_id = self.load_id
        return metadata
