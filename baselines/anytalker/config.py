"""Configuration of the AnyTalker DiT: one dataclass for both released variants.

Section numbers (§) refer to ``shared/spec/anytalker-model.md``.

The official constructor hard-wires several widths (CLIP 1280, wav2vec2 12 x 768, audio MLP 512,
32 audio tokens, 257 CLIP tokens). Here every one of them is a field with the real value as its
default, so that tiny test models (the golden vectors) can be built with small values.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import asdict, dataclass, replace
from typing import Any, Mapping

VARIANT_AF = "af"  # AnyTalker-1.3B: AFCA fused into each block's cross-attention (§5.12)
VARIANT_LEGACY = "legacy"  # AnyTalker-14B: separate MultiTalk-style audio sub-layer (§5.13)
VARIANTS = (VARIANT_AF, VARIANT_LEGACY)

# §3.1: these JSON keys are listed as "ignored for config" by the official model class, so the
# constructor defaults always apply whatever the JSON says.
OFFICIAL_IGNORED_DEFAULTS = {"patch_size": [1, 2, 2], "qk_norm": True, "cross_attn_norm": True,
                             "text_dim": 4096, "window_size": [-1, -1]}
# §3.1: stored in the JSON but without effect on the architecture or the forward pass.
OFFICIAL_NO_EFFECT_JSON_FIELDS = ("temporal_align", "use_concat_attention", "model_type")


@dataclass(frozen=True)
class AnyTalkerConfig:
    """Every size of the DiT. Defaults = AnyTalker-1.3B (AF variant), see :meth:`af_1_3b`."""

    variant: str = VARIANT_AF
    # --- Wan2.1 backbone (§3.1 table) ---
    dim: int = 1536
    ffn_dim: int = 8960
    num_heads: int = 12
    num_layers: int = 30
    in_dim: int = 36  # 16 noisy latent + 4 mask + 16 reference latent (§1)
    out_dim: int = 16
    text_dim: int = 4096  # umT5-XXL width; official JSON value ignored (§3.1)
    text_len: int = 512
    freq_dim: int = 256
    eps: float = 1e-6
    patch_size: tuple[int, int, int] = (1, 2, 2)  # fixed by the official code (§3.1)
    # --- image / face CLIP tokens (§5.5): ViT-H/14 penultimate tokens ---
    clip_dim: int = 1280
    clip_tokens: int = 257  # not a weight size; used for dummy inputs and documentation
    # --- audio projection (§5.6 / §5.7): windowed wav2vec2-base features ---
    audio_window: int = 5  # frames k-2..k+2 (§7.1 step 9)
    audio_blocks: int = 12  # wav2vec2-base transformer layers
    audio_channels: int = 768  # wav2vec2-base width
    audio_intermediate_dim: int = 512
    audio_context_tokens: int = 32  # tokens per video frame (AF) / per latent frame (legacy)
    # --- legacy variant only (§3.1, §4.2, §5.7, §5.13) ---
    vae_scale: int = 4  # video frames per latent frame; later-frame window = audio_window + vae_scale - 1
    audio_output_dim: int = 768  # legacy audio token width (K/V input of kv_linear)
    norm_input_visual: bool = True  # legacy `norm_x`
    norm_output_audio: bool = True  # legacy `audio_proj.norm`
    # --- RoPE (§5.11): tables cover positions 0..1023 per axis ---
    rope_max_positions: int = 1024

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, not {self.variant!r}")
        if self.dim % self.num_heads:
            raise ValueError(f"dim {self.dim} is not divisible by num_heads {self.num_heads}")
        if (self.dim // self.num_heads) % 2:
            raise ValueError("head width must be even (RoPE pairs adjacent channels)")
        object.__setattr__(self, "patch_size", tuple(int(p) for p in self.patch_size))

    # ------------------------------------------------------------------ presets
    @classmethod
    def af_1_3b(cls) -> "AnyTalkerConfig":
        """AnyTalker-1.3B single-person v1 (`1_3B-single-v1.pth`), §3.1 table."""
        return cls(variant=VARIANT_AF, dim=1536, ffn_dim=8960, num_heads=12, num_layers=30)

    @classmethod
    def legacy_14b(cls) -> "AnyTalkerConfig":
        """AnyTalker-14B multi-person v1 (`14B-multi-v1.pth`), §3.1 table."""
        return cls(variant=VARIANT_LEGACY, dim=5120, ffn_dim=13824, num_heads=40, num_layers=40)

    # ------------------------------------------------------------------ derived
    @property
    def head_dim(self) -> int:
        return self.dim // self.num_heads

    @property
    def is_legacy(self) -> bool:
        return self.variant == VARIANT_LEGACY

    @property
    def audio_window_vf(self) -> int:
        """Legacy: length of the 8-frame sequence of a later latent frame (§5.7)."""
        return self.audio_window + self.vae_scale - 1

    def replace(self, **changes: Any) -> "AnyTalkerConfig":
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    # ------------------------------------------------------------------ JSON
    def to_official_json(self) -> dict[str, Any]:
        """The fields of an official ``config_af2v_*.json`` describing this configuration (§3.1).
        Widths the official code hard-wires (clip_dim, wav2vec sizes, ...) have no JSON field."""
        data: dict[str, Any] = {
            "model_type": "a2v_af", "text_len": self.text_len, "in_dim": self.in_dim, "dim": self.dim,
            "ffn_dim": self.ffn_dim, "freq_dim": self.freq_dim, "out_dim": self.out_dim,
            "num_heads": self.num_heads, "num_layers": self.num_layers, "eps": self.eps,
            "legacy_audio_cross_attn": self.is_legacy,
        }
        if self.is_legacy:
            data.update(audio_window=self.audio_window, intermediate_dim=self.audio_intermediate_dim,
                        audio_output_dim=self.audio_output_dim, context_tokens=self.audio_context_tokens,
                        vae_scale=self.vae_scale, norm_input_visual=self.norm_input_visual,
                        norm_output_audio=self.norm_output_audio)
        return data

    @classmethod
    def from_official_json(
        cls, source: str | os.PathLike | Mapping[str, Any], *, warn: bool = True
    ) -> "AnyTalkerConfig":
        """Read an official ``config_af2v_*.json`` with the official quirks (§3.1).

        The five "ignored for config" fields are dropped (the defaults apply, as in the official
        diffusers-style ``from_config``); keys starting with ``_`` and unknown keys are ignored.
        For the AF variant the audio-projection fields of the JSON are unused by the official code
        (its projection is always 5 / 12 / 768 / 512 / 32), so they are not read either.
        """
        data = _read_json(source)
        model_type = data.get("model_type", "a2v_af")
        if model_type != "a2v_af":
            raise ValueError(f"not an AnyTalker config: model_type={model_type!r} (expected 'a2v_af')")
        changed = sorted(k for k, default in OFFICIAL_IGNORED_DEFAULTS.items()
                         if k in data and _json_value(data[k]) != default)
        if changed and warn:
            warnings.warn(
                f"AnyTalker config: {changed} ignored, as by the official code (spec §3.1); "
                "the constructor defaults apply", stacklevel=2)
        legacy = bool(data.get("legacy_audio_cross_attn", False))
        kw: dict[str, Any] = {"variant": VARIANT_LEGACY if legacy else VARIANT_AF}
        for key in ("dim", "ffn_dim", "num_heads", "num_layers", "in_dim", "out_dim", "text_len", "freq_dim"):
            if key in data:
                kw[key] = int(data[key])
        if "eps" in data:
            kw["eps"] = float(data["eps"])
        if legacy:
            legacy_map = {"audio_window": "audio_window", "intermediate_dim": "audio_intermediate_dim",
                          "context_tokens": "audio_context_tokens", "vae_scale": "vae_scale",
                          "audio_output_dim": "audio_output_dim"}
            for src, dst in legacy_map.items():
                if src in data:
                    kw[dst] = int(data[src])
            for key in ("norm_input_visual", "norm_output_audio"):
                if key in data:
                    kw[key] = bool(data[key])
        return cls(**kw)

    @classmethod
    def from_json_fields(cls, source: str | os.PathLike | Mapping[str, Any], **overrides: Any) -> "AnyTalkerConfig":
        """Read a config JSON honouring *every* field (unlike the official code).

        For test configurations (the golden folder) whose JSON sets e.g. ``text_dim`` to a tiny
        value that the official class would drop; ``overrides`` set the widths that the official
        constructor hard-wires (``clip_dim``, ``audio_blocks``, ...).
        """
        data = _read_json(source)
        cfg = cls.from_official_json(data, warn=False)
        kw: dict[str, Any] = {}
        if "text_dim" in data:
            kw["text_dim"] = int(data["text_dim"])
        if "patch_size" in data:
            kw["patch_size"] = tuple(int(p) for p in data["patch_size"])
        if data.get("qk_norm", True) is not True or data.get("cross_attn_norm", True) is not True:
            raise ValueError("qk_norm / cross_attn_norm off is not part of AnyTalker (spec §3.1)")
        kw.update(overrides)
        return cfg.replace(**kw)


def _read_json(source: str | os.PathLike | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(source, Mapping):
        return dict(source)
    with open(source, encoding="utf-8") as fh:
        return json.load(fh)


def _json_value(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v
