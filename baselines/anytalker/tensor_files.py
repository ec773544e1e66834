"""The one reader of weight files for the AnyTalker DiT (``checkpoint.py``) and the Wan encoders
(``encoder_io.py``): ``torch.load(weights_only=True)`` (tensors and plain containers only, no
arbitrary unpickling; memory-mapped when the file format allows, so an 11 GB file is not read
twice) or a ``.safetensors`` file, and the check that what was read is a flat dict of tensors.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import torch


class CheckpointError(ValueError):
    """The file is not a state dict matching the expected architecture."""


def load_tensor_file(path: str | os.PathLike) -> Any:
    """The object stored in ``path``, read safely; errors of the readers propagate unchanged."""
    path = os.fspath(path)
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path, device="cpu")
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as exc:
        if "mmap" not in str(exc):  # legacy (non-zip) pickles cannot be memory-mapped
            raise
        return torch.load(path, map_location="cpu", weights_only=True)


def tensor_dict(obj: Any, source: str, *, expected: str = "a flat dict of tensors", show: int = 8
                ) -> dict[str, torch.Tensor]:
    """``obj`` as a ``{str: Tensor}`` dict, or a one-line :class:`CheckpointError` naming ``source``
    (``show``: how many offending keys the message names)."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{source}: expected {expected}, got {type(obj).__name__}")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{source}: non-tensor entries {bad[:show]}")
    return dict(obj)
