"""Loading AnyTalker DiT checkpoints (§4 of ``shared/spec/anytalker-model.md``).

- :func:`read_state_dict`: a ``.pth`` pickle read with ``torch.load(weights_only=True)`` (tensors
  and plain containers only; memory-mapped when the file format allows), or a ``.safetensors``
  file; the DiT weights are taken from ``["model"]`` when present.
- :func:`detect_variant` / :func:`infer_config`: the variant from the key set, every size that the
  shapes determine, the rest from the config JSON (or the released defaults), and a cross-check of
  the JSON against the weights.
- :func:`load_anytalker_dit`: strict load into a model built on the ``meta`` device with
  ``assign=True``, so the stored dtype is kept (as the official loader does) and no memory is
  allocated twice; a :class:`CheckpointError` names the first missing / unexpected / misshaped keys.
"""

from __future__ import annotations

import os
import re
from typing import Any, Mapping

import torch

from .config import VARIANT_AF, VARIANT_LEGACY, AnyTalkerConfig
from .model import AnyTalkerDiT
from .tensor_files import CheckpointError, load_tensor_file, tensor_dict

# §4: these keys identify the variant
LEGACY_KEY = "blocks.0.audio_cross_attn.kv_linear.weight"
AF_KEY = "blocks.0.cross_attn.k_face.weight"
# Both released models use 128-wide heads (spec notation); num_heads is not visible in any shape.
RELEASED_HEAD_DIM = 128

_SHOW = 8  # keys named in an error message


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a checkpoint safely: tensors only, no arbitrary unpickling. Returns the DiT state dict
    (``obj["model"]`` for the official ``.pth`` files)."""
    return _state_dict_of(load_tensor_file(path), os.fspath(path))


def _state_dict_of(obj: Any, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping) and "model" in obj and isinstance(obj["model"], Mapping):
        obj = obj["model"]  # §4: the DiT weights are under "model"
    return tensor_dict(obj, source, expected="a dict of tensors (or {'model': ...})", show=_SHOW)


def detect_variant(state_dict: Mapping[str, torch.Tensor]) -> str:
    """"legacy" if ``blocks.0.audio_cross_attn.kv_linear.weight`` is present, "af" if
    ``blocks.0.cross_attn.k_face.weight`` is (§4)."""
    legacy, af = LEGACY_KEY in state_dict, AF_KEY in state_dict
    if legacy and af:
        raise CheckpointError(f"ambiguous AnyTalker variant: both {LEGACY_KEY!r} and {AF_KEY!r} are present")
    if not (legacy or af):
        raise CheckpointError(f"not an AnyTalker DiT: neither {LEGACY_KEY!r} (14B, legacy variant) "
                              f"nor {AF_KEY!r} (1.3B, AF variant) is present")
    return VARIANT_LEGACY if legacy else VARIANT_AF


def _shape(sd: Mapping[str, torch.Tensor], key: str) -> tuple[int, ...]:
    if key not in sd:
        raise CheckpointError(f"missing key {key!r}")
    return tuple(sd[key].shape)


def infer_sizes(state_dict: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Every config field that the tensor shapes (and the key set) determine."""
    sd = state_dict
    variant = detect_variant(sd)
    dim, in_dim, *patch = _shape(sd, "patch_embedding.weight")
    blocks = {int(m.group(1)) for k in sd if (m := re.match(r"blocks\.(\d+)\.", k))}
    if blocks != set(range(len(blocks))):
        raise CheckpointError(f"block indices are not contiguous: {sorted(blocks)[:_SHOW]}...")
    n_patch = patch[0] * patch[1] * patch[2]
    head_out = _shape(sd, "head.head.weight")[0]
    if head_out % n_patch:
        raise CheckpointError(f"head.head.weight has {head_out} outputs, not a multiple of the patch size {patch}")
    sizes: dict[str, Any] = {
        "variant": variant,
        "dim": dim,
        "in_dim": in_dim,
        "patch_size": tuple(patch),
        "num_layers": len(blocks),
        "ffn_dim": _shape(sd, "blocks.0.ffn.0.weight")[0],
        "text_dim": _shape(sd, "text_embedding.0.weight")[1],
        "freq_dim": _shape(sd, "time_embedding.0.weight")[1],
        "out_dim": head_out // n_patch,
        "clip_dim": _shape(sd, "img_emb.proj.1.weight")[1],
    }
    prefix = "audio_proj" if variant == VARIANT_LEGACY else "audio_emb"
    sizes["audio_intermediate_dim"] = _shape(sd, f"{prefix}.proj1.weight")[0]
    tokens_width = _shape(sd, f"{prefix}.proj3.weight")[0]
    if variant == VARIANT_LEGACY:
        audio_dim = _shape(sd, "blocks.0.audio_cross_attn.kv_linear.weight")[1]
        sizes["audio_output_dim"] = audio_dim
        sizes["norm_input_visual"] = "blocks.0.norm_x.weight" in sd
        sizes["norm_output_audio"] = "audio_proj.norm.weight" in sd
    else:
        audio_dim = dim  # §5.6: projected straight to the model width
    if tokens_width % audio_dim:
        raise CheckpointError(f"{prefix}.proj3.weight has {tokens_width} outputs, not a multiple of {audio_dim}")
    sizes["audio_context_tokens"] = tokens_width // audio_dim
    return sizes


def _audio_input_widths(sd: Mapping[str, torch.Tensor], cfg: AnyTalkerConfig) -> None:
    """The projections' input widths are products (window x layers x channels), which the shapes
    cannot factor: check the configured factors against them."""
    prefix = "audio_proj" if cfg.is_legacy else "audio_emb"
    per_frame = cfg.audio_blocks * cfg.audio_channels
    checks = [(f"{prefix}.proj1.weight", cfg.audio_window * per_frame, "audio_window x audio_blocks x audio_channels")]
    if cfg.is_legacy:
        checks.append(("audio_proj.proj1_vf.weight", cfg.audio_window_vf * per_frame,
                       "(audio_window + vae_scale - 1) x audio_blocks x audio_channels"))
    for key, want, what in checks:
        got = _shape(sd, key)[1]
        if got != want:
            raise CheckpointError(f"{key} takes {got} inputs but {what} = {want}; pass the audio sizes in the config")


def infer_config(
    state_dict: Mapping[str, torch.Tensor],
    config: AnyTalkerConfig | str | os.PathLike | Mapping[str, Any] | None = None,
) -> AnyTalkerConfig:
    """The configuration of a state dict: sizes from the shapes, the rest (num_heads, eps,
    text_len, audio window / layers / channels, vae_scale) from ``config`` — an
    :class:`AnyTalkerConfig`, or an official config JSON (path or dict, read with the official
    quirks of §3.1) — or, without it, the released defaults with 128-wide heads.

    When ``config`` is given, every size the weights determine must agree with it (the official
    code builds the model from the JSON and then loads strictly, so a disagreement would fail
    there too); a :class:`CheckpointError` lists the disagreements.
    """
    sizes = infer_sizes(state_dict)
    if config is None:
        base = AnyTalkerConfig(variant=sizes["variant"], dim=sizes["dim"],
                               num_heads=max(sizes["dim"] // RELEASED_HEAD_DIM, 1))
        cfg = base.replace(**sizes)
    else:
        base = config if isinstance(config, AnyTalkerConfig) else AnyTalkerConfig.from_official_json(config)
        diffs = [f"{k}: config {getattr(base, k)!r} vs weights {v!r}" for k, v in sizes.items()
                 if getattr(base, k) != v]
        if diffs:
            raise CheckpointError("config and checkpoint disagree: " + "; ".join(diffs))
        cfg = base
    _audio_input_widths(state_dict, cfg)
    return cfg


def check_state_dict(model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Raise a :class:`CheckpointError` naming the first missing, unexpected and misshaped keys."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    misshaped = [f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
                 for k, v in expected.items() if k in state_dict and state_dict[k].shape != v.shape]
    if missing or unexpected or misshaped:
        parts = []
        for name, items in (("missing", missing), ("unexpected", unexpected), ("misshaped", misshaped)):
            if items:
                more = f" (+{len(items) - _SHOW} more)" if len(items) > _SHOW else ""
                parts.append(f"{len(items)} {name} key(s): {items[:_SHOW]}{more}")
        raise CheckpointError("state dict does not match the AnyTalker DiT: " + "; ".join(parts))


def load_anytalker_dit(
    checkpoint: str | os.PathLike | Mapping[str, torch.Tensor],
    config: AnyTalkerConfig | str | os.PathLike | Mapping[str, Any] | None = None,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
) -> AnyTalkerDiT:
    """Build the DiT for a checkpoint and load it strictly (§4).

    ``checkpoint``: a ``.pth`` / ``.safetensors`` path or a state dict. ``config``: optional
    config JSON (path / dict) or :class:`AnyTalkerConfig`, cross-checked against the weights.
    ``dtype``: None keeps the stored dtype (as the official loader does); the fp32 reference
    path needs ``torch.float32``, inference ``torch.bfloat16``. Returns the model in eval mode
    with gradients off.
    """
    if isinstance(checkpoint, Mapping):
        sd = _state_dict_of(checkpoint)
    else:
        sd = read_state_dict(checkpoint)
    cfg = infer_config(sd, config)
    with torch.device("meta"):
        model = AnyTalkerDiT(cfg)
    check_state_dict(model, sd)
    model.load_state_dict(sd, strict=True, assign=True)
    if any(p.is_meta for p in model.parameters()):  # defensive: assign must have replaced every tensor
        raise CheckpointError("some parameters were not loaded")
    if dtype is not None:
        model.to(dtype=dtype)
    model.to(device=device)
    return model.eval().requires_grad_(False)

