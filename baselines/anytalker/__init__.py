"""Native AnyTalker reference generator (Wan2.1 I2V DiT + Audio-Face Cross Attention).

Importing this package imports torch only; transformers (wav2vec2) and diffusers (UniPC) are
imported inside the functions that need them. See ``docs/anytalker.md``.
"""

from .checkpoint import CheckpointError, infer_config, load_anytalker_dit, read_state_dict
from .config import VARIANT_AF, VARIANT_LEGACY, AnyTalkerConfig
from .model import AnyTalkerDiT

__all__ = [
    "AnyTalkerConfig",
    "AnyTalkerDiT",
    "CheckpointError",
    "VARIANT_AF",
    "VARIANT_LEGACY",
    "infer_config",
    "load_anytalker_dit",
    "read_state_dict",
]
