"""The Wan2.1 VAE from the original ``Wan2.1_VAE.pth``, run by diffusers' ``AutoencoderKLWan``.

Spec: ``shared/spec/wan-encoders.md`` §2 (architecture, causal cache, latent normalisation, key
layout, mapping). API (used by the AnyTalker pipeline)::

    vae = load_wan_vae("Wan2.1_VAE.pth", device="cuda", dtype=torch.float32)
    z = vae.encode(video)          # video [B, 3, T, H, W] in [-1, 1], T = 1 + 4k
                                   # -> normalised latents [B, z_dim, 1 + k, H/8, W/8]
    video = vae.decode(z)          # -> [B, 3, 1 + 4(f-1), 8h, 8w] in [-1, 1] (clamped)
    vae.z_dim, vae.temporal_stride, vae.spatial_stride   # 16, 4, 8

- :func:`convert_wan_vae_state_dict`: official keys -> diffusers keys, a pure renaming (§2.6).
- The configuration comes from the tensor shapes (base width, z_dim, width multipliers, residual
  blocks per stage, which down-samplers are temporal), so the real file and tiny test files load
  through the same call; ``config`` (official constructor names, e.g. a golden ``vae_tiny.config.json``)
  overrides it and a mismatch is a strict-load error naming the file.
- ``encode`` returns (mu - mean) / std with the 16 per-channel constants of §2.4 (posterior mean,
  log-variance discarded); ``decode`` de-normalises, decodes and clamps to [-1, 1] (§2.4).
- Memory over time: ``decode`` runs the decoder on ``chunk`` latent frames at a time (after the
  first, which is alone), the causal cache carried across calls, so the activations are those of
  one chunk whatever the clip length (the official decode and diffusers' are ``chunk=1``); each
  clamped piece goes straight into one preallocated float32 output on ``output_device`` (e.g. the
  CPU, so a long clip's video never sits on the GPU; no repeated concatenation). The result does not
  depend on ``chunk`` beyond float rounding (tests: == diffusers' whole-clip ``decode`` within 1e-5).
  diffusers' other option, spatial tiling (``enable_tiling``), blends overlapping tiles and so is
  only approximately equal: not used.
- :func:`conditioning_clip`: the AnyTalker VAE conditioning clip built from the reference image (§1).
"""

from __future__ import annotations

import inspect
import os
import re
from typing import Any, Mapping

import torch

from .encoder_io import finish, load_strict, read_config, read_weights

# §2.4: per-channel latent statistics of the Wan2.1 VAE (z_dim 16); float32.
LATENTS_MEAN = (-0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
                0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921)
LATENTS_STD = (2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
               3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160)

# §2.2: the real Wan2.1 VAE (official constructor names); 126.9 M parameters in 194 tensors.
WAN_VAE_CONFIG: dict[str, Any] = {
    "dim": 96, "z_dim": 16, "dim_mult": [1, 2, 4, 4], "num_res_blocks": 2,
    "attn_scales": [], "temperal_downsample": [False, True, True], "dropout": 0.0,
}
TEMPORAL_STRIDE = 4  # two temporal down-samplers, first frame kept: F = 1 + 4 (f - 1)
SPATIAL_STRIDE = 8  # three spatial down-samplers

# §2.6 renaming inside a residual block (indices 1, 4, 5 of `residual` hold no parameters)
_RESIDUAL = {"residual.0.": "norm1.", "residual.2.": "conv1.", "residual.3.": "norm2.",
             "residual.6.": "conv2.", "shortcut.": "conv_shortcut."}
_TOP = {"conv1.": "quant_conv.", "conv2.": "post_quant_conv."}


def _rename_block(rest: str) -> str:
    for old, new in _RESIDUAL.items():
        if rest.startswith(old):
            return new + rest[len(old):]
    return rest  # resampler (`resample.1`, `time_conv`) and attention names are unchanged


def _decoder_res_per_stage(keys) -> int:
    """Residual blocks per decoder stage (num_res_blocks + 1): the index of the first up-sampler."""
    ups = {int(m.group(1)) for k in keys if (m := re.match(r"decoder\.upsamples\.(\d+)\.resample\.", k))}
    if not ups:
        raise KeyError("no decoder.upsamples.N.resample.* key: not a Wan2.1 VAE state dict")
    return min(ups)


def convert_wan_vae_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official ``Wan2.1_VAE.pth`` keys -> diffusers ``AutoencoderKLWan`` keys (§2.6); tensors are
    passed through untouched. Unknown keys are kept as they are (the strict load then names them)."""
    per_stage = _decoder_res_per_stage(state_dict)
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        new = key
        for part in ("encoder", "decoder"):
            p = part + "."
            if not key.startswith(p):
                continue
            rest = key[len(p):]
            if rest.startswith("conv1."):
                new = p + "conv_in." + rest[len("conv1."):]
            elif rest.startswith("head.0."):
                new = p + "norm_out." + rest[len("head.0."):]
            elif rest.startswith("head.2."):
                new = p + "conv_out." + rest[len("head.2."):]
            elif m := re.match(r"middle\.(\d+)\.(.*)", rest):
                i, tail = int(m.group(1)), m.group(2)
                if i == 1:  # resnet, attention, resnet
                    new = p + "mid_block.attentions.0." + tail
                else:
                    new = p + f"mid_block.resnets.{i // 2}." + _rename_block(tail)
            elif m := re.match(r"downsamples\.(\d+)\.(.*)", rest):  # a flat list in diffusers too
                new = p + f"down_blocks.{m.group(1)}." + _rename_block(m.group(2))
            elif m := re.match(r"upsamples\.(\d+)\.(.*)", rest):
                # flat list [res x per_stage, upsampler] per stage -> up_blocks.S.{resnets.J | upsamplers.0}
                stage, j = divmod(int(m.group(1)), per_stage + 1)
                tail = m.group(2)
                new = p + (f"up_blocks.{stage}.upsamplers.0." + tail if j == per_stage
                           else f"up_blocks.{stage}.resnets.{j}." + _rename_block(tail))
        for old, repl in _TOP.items():
            if key.startswith(old):
                new = repl + key[len(old):]
        out[new] = value
    return out


def infer_vae_config(state_dict: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Official constructor arguments from the shapes of an official-key state dict (§2.2, §2.5)."""
    sd = state_dict
    base = sd["encoder.conv1.weight"].shape[0]
    z_dim = sd["conv2.weight"].shape[0]
    # encoder: stage i has num_res_blocks residual blocks then (i < last) a down-sampler; the width of
    # stage i's blocks is dim * dim_mult[i]; the last stage's width is the head's input
    down = sorted({int(m.group(1)) for k in sd if (m := re.match(r"encoder\.downsamples\.(\d+)\.", k))})
    samplers = sorted({int(m.group(1)) for k in sd if (m := re.match(r"encoder\.downsamples\.(\d+)\.resample\.", k))})
    num_res = samplers[0] if samplers else len(down)
    n_stages = len(samplers) + 1
    mult = [sd[f"encoder.downsamples.{i * (num_res + 1)}.residual.2.weight"].shape[0] // base for i in range(n_stages)]
    temporal = [f"encoder.downsamples.{s}.time_conv.weight" in sd for s in samplers]
    return {"dim": base, "z_dim": z_dim, "dim_mult": mult, "num_res_blocks": num_res,
            "attn_scales": [], "temperal_downsample": temporal, "dropout": 0.0}


class WanVAE(torch.nn.Module):
    """The Wan2.1 VAE: a diffusers ``AutoencoderKLWan`` plus the Wan latent normalisation."""

    temporal_stride = TEMPORAL_STRIDE
    spatial_stride = SPATIAL_STRIDE

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        self.z_dim = int(model.config.z_dim)
        if self.z_dim != len(LATENTS_MEAN):
            raise ValueError(f"the Wan2.1 latent statistics are for z_dim {len(LATENTS_MEAN)}, not {self.z_dim}")
        # kept in float32 whatever the model dtype (§2.4: the wrapper's constants are float32)
        self.register_buffer("latents_mean", torch.tensor(LATENTS_MEAN, dtype=torch.float32), persistent=False)
        # §2.4: the official wrapper stores 1/std (computed in float32) and multiplies by it on encode,
        # divides by it on decode; doing the same keeps the goldens bit-exact (x / std differs by 1 ulp)
        self.register_buffer("latents_inv_std", 1.0 / torch.tensor(LATENTS_STD, dtype=torch.float32),
                             persistent=False)

    def _stats(self, ndim: int) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (1, -1) + (1,) * (ndim - 2)
        return self.latents_mean.float().view(shape), self.latents_inv_std.float().view(shape)

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """[B, 3, 1 + 4k, H, W] in [-1, 1] -> normalised latents [B, z_dim, 1 + k, H/8, W/8], float32.

        The posterior mean (``latent_dist.mode()``), never a sample; (mu - mean) / std per channel."""
        if video.ndim != 5 or video.shape[1] != 3 or (video.shape[2] - 1) % self.temporal_stride:
            raise ValueError(f"video must be [B, 3, 1+4k, H, W], got {tuple(video.shape)}")
        mu = self.model.encode(video.to(self.device, self.dtype)).latent_dist.mode().float()
        mean, inv_std = self._stats(mu.ndim)
        return (mu - mean) * inv_std

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, *, chunk: int = 1,
               output_device: torch.device | str | None = None) -> torch.Tensor:
        """Normalised latents [B, z_dim, f, h, w] -> video [B, 3, 1 + 4(f-1), 8h, 8w] in [-1, 1], float32.

        ``chunk`` latent frames per decoder call after the first frame (causal cache carried across calls: the result does
        not depend on it beyond float rounding); ``output_device`` holds the video (default: the
        model's device)."""
        if latents.ndim != 5 or latents.shape[1] != self.z_dim:
            raise ValueError(f"latents must be [B, {self.z_dim}, f, h, w], got {tuple(latents.shape)}")
        mean, inv_std = self._stats(latents.ndim)
        z = latents.to(self.device, torch.float32) / inv_std + mean
        z = z.to(self.dtype)
        out_dev = torch.device(output_device) if output_device is not None else self.device
        return self._decode_chunked(z, max(1, int(chunk)), out_dev)

    def _decode_chunked(self, z: torch.Tensor, chunk: int, out_dev: torch.device) -> torch.Tensor:
        # The loop of diffusers' AutoencoderKLWan._decode (itself the official per-frame decode),
        # with several latent frames per call allowed and each piece written straight into `out`.
        m = self.model
        b, _, f, h, w = z.shape
        out = torch.empty(b, 3, 1 + self.temporal_stride * (f - 1), h * self.spatial_stride,
                          w * self.spatial_stride, dtype=torch.float32, device=out_dev)
        # newer diffusers pass the decoder `first_chunk` explicitly; without that parameter it follows the cache
        takes_first = "first_chunk" in inspect.signature(m.decoder.forward).parameters
        m.clear_cache()
        try:
            x = m.post_quant_conv(z)
            t = 0
            # the first latent frame alone (the temporal up-samplers pass it through without their
            # conv, §2.3), then `chunk` frames per call
            for i, j in [(0, 1)] + [(s, min(s + chunk, f)) for s in range(1, f, chunk)]:
                m._conv_idx = [0]
                extra = {"first_chunk": i == 0} if takes_first else {}
                piece = m.decoder(x[:, :, i:j], feat_cache=m._feat_map, feat_idx=m._conv_idx, **extra)
                n = piece.shape[2]
                out[:, :, t:t + n] = piece.float().clamp_(-1, 1).to(out_dev)
                t += n
        finally:
            m.clear_cache()
        if t != out.shape[2]:
            raise RuntimeError(f"decoder produced {t} frames, expected {out.shape[2]}")
        return out


def conditioning_clip(image: torch.Tensor, height: int, width: int, frames: int) -> torch.Tensor:
    """The VAE input that conditions AnyTalker (spec §1): the reference image [3, H, W] in [-1, 1]
    bicubically resized to (height, width) in float32 (torch ``interpolate``, align_corners False, no
    antialias, **no clamp**: the overshoot is kept, as officially), then ``frames - 1`` all-zero frames
    -> [3, frames, height, width]."""
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"image must be [3, H, W], got {tuple(image.shape)}")
    first = torch.nn.functional.interpolate(image[None].float(), size=(height, width), mode="bicubic",
                                            align_corners=False)[0]
    clip = first.new_zeros(3, frames, height, width)
    clip[:, 0] = first
    return clip


def build_vae_model(config: Mapping[str, Any]) -> torch.nn.Module:
    """An (uninitialised where built on meta) ``AutoencoderKLWan`` for official constructor args."""
    from diffusers import AutoencoderKLWan

    c = dict(WAN_VAE_CONFIG, **config)
    return AutoencoderKLWan(base_dim=c["dim"], z_dim=c["z_dim"], dim_mult=list(c["dim_mult"]),
                            num_res_blocks=c["num_res_blocks"], attn_scales=list(c["attn_scales"]),
                            temperal_downsample=list(c["temperal_downsample"]), dropout=c["dropout"],
                            latents_mean=list(LATENTS_MEAN), latents_std=list(LATENTS_STD))


def load_wan_vae(path: str | os.PathLike, *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                 config: Mapping[str, Any] | str | os.PathLike | None = None) -> WanVAE:
    """Load ``Wan2.1_VAE.pth`` (or an official-key ``.safetensors``) strictly into a :class:`WanVAE`.

    ``config``: official constructor arguments (mapping or JSON path); default: inferred from the
    shapes (the real file gives :data:`WAN_VAE_CONFIG`). The official pipeline runs the VAE in float32."""
    raw = read_weights(path)
    try:
        inferred = infer_vae_config(raw)
        sd = convert_wan_vae_state_dict(raw)
    except (KeyError, IndexError) as exc:
        from .checkpoint import CheckpointError

        raise CheckpointError(f"{os.fspath(path)}: not a Wan2.1 VAE state dict (no key {exc})") from None
    cfg = dict(inferred, **read_config(config))
    model = load_strict(lambda: build_vae_model(cfg), sd, os.fspath(path), "Wan2.1 VAE")
    return WanVAE(finish(model, device, dtype)).to(device)
