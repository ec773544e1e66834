"""Native AnyTalker reference generator (Wan2.1 I2V DiT + Audio-Face Cross Attention).

Importing this package imports nothing heavy: the names below are loaded on first use (PEP 562),
so ``ie-bench methods`` can read ``method.AnyTalkerMethod``'s capabilities without torch. The DiT
modules import torch only; transformers (wav2vec2, encoders) and diffusers (UniPC, VAE) are
imported inside the functions that need them. See ``docs/anytalker.md``.

The whole generator: ``pipeline.AnyTalkerPipeline`` (one clip from image + tracks + boxes) and
``method.AnyTalkerMethod`` (the benchmark adapter, ``ie-bench run --method anytalker``).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "CheckpointError": "checkpoint",
    "infer_config": "checkpoint",
    "load_anytalker_dit": "checkpoint",
    "read_state_dict": "checkpoint",
    "VARIANT_AF": "config",
    "VARIANT_LEGACY": "config",
    "AnyTalkerConfig": "config",
    "AnyTalkerDiT": "model",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
