"""Shared building blocks of the AnyTalker DiT: norms, attention, RoPE, timestep sinusoid.

Section numbers (§) refer to ``shared/spec/anytalker-model.md``.

Precision convention of the whole package (§6): the residual stream, all norms, the modulation
arithmetic, RoPE and the head run in float32; linear layers and attention run in the dtype of the
weights (float32 for the reference path, bfloat16 / float16 for inference).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

ROPE_THETA = 10000.0  # §5.11
SINUSOID_BASE = 10000.0  # §5.3


# --------------------------------------------------------------------------- norms
class RMSNorm(nn.Module):
    """RMS norm over the full width (§5.10): y = x / sqrt(mean(x^2) + eps), computed in float32,
    cast back to the input dtype, then multiplied by the weight."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        y = xf * torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return y.to(x.dtype) * self.weight.to(x.dtype)


class LayerNorm32(nn.LayerNorm):
    """LayerNorm computed in float32 and cast back to the input dtype (§5.15: "All LayerNorms in
    the Wan wrapper compute in float32"), whatever the dtype of its affine parameters."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.float() if self.weight is not None else None
        b = self.bias.float() if self.bias is not None else None
        return F.layer_norm(x.float(), self.normalized_shape, w, b, self.eps).to(x.dtype)


def layer_norm_fp32(x: torch.Tensor, eps: float) -> torch.Tensor:
    """Non-affine LayerNorm in float32 (block norm1/norm2, head norm; §5.15). Returns float32."""
    return F.layer_norm(x.float(), (x.shape[-1],), eps=eps)


def linear_fp32(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """A linear layer evaluated in float32 whatever its storage dtype: the official code wraps the
    time embedding and the head in float32 autocast regions (§5.3, §6)."""
    b = layer.bias.float() if layer.bias is not None else None
    return F.linear(x.float(), layer.weight.float(), b)


# --------------------------------------------------------------------------- attention
def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
              mask: torch.Tensor | None = None) -> torch.Tensor:
    """Softmax attention with scale 1/sqrt(head_dim) and no dropout (§6), through PyTorch SDPA
    (which picks flash attention for unmasked half-precision CUDA inputs).

    q: [B, Lq, H, d]; k, v: [B, Lk, H, d]; mask: boolean, broadcastable to [B, H, Lq, Lk],
    True = may attend. Returns [B, Lq, H, d].
    """
    out = F.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask)
    return out.transpose(1, 2)


# --------------------------------------------------------------------------- timestep sinusoid
def sinusoidal_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Timestep sinusoid of §5.3 in float32: [cos(t * f_k), sin(t * f_k)], f_k = 10000^(-k/half),
    cosines first. t: [B] (integer or float). Returns [B, dim] float32."""
    if dim % 2:
        raise ValueError("sinusoid width must be even")
    half = dim // 2
    # float32 throughout (§5.3); float64 (as in stock Wan) differs by up to 3e-5 at t = 999
    pos = t.reshape(-1).to(torch.float32)
    freqs = torch.pow(torch.tensor(SINUSOID_BASE, dtype=torch.float32, device=pos.device),
                      -torch.arange(half, dtype=torch.float32, device=pos.device) / half)
    angles = torch.outer(pos, freqs)
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)


# --------------------------------------------------------------------------- RoPE
def rope_split(head_dim: int) -> tuple[int, int, int]:
    """Pairs per axis (§5.11): n_t = d/2 - 2*floor(d/6) time pairs, then floor(d/6) height and
    floor(d/6) width pairs; 22 / 21 / 21 for d = 128."""
    n_h = head_dim // 6
    return head_dim // 2 - 2 * n_h, n_h, n_h


def rope_inv_freq(num_pairs: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Inverse frequencies 1 / 10000^(2j / (2 n)) of one axis, computed in float32 (§5.11: the
    official table is float32 throughout; a float64 table differs from it by ~2e-6)."""
    dim = 2 * num_pairs
    exps = torch.arange(0, dim, 2, dtype=torch.float32, device=device) / dim
    return 1.0 / torch.pow(torch.tensor(ROPE_THETA, dtype=torch.float32, device=device), exps)


def rope_angles_table(head_dim: int, positions: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Angles [positions, head_dim/2] (float32): column j uses its axis' frequency (time pairs
    first, then height, then width), row p = position p on every axis. cos/sin of it give the
    official rotary table (``freqs`` in the golden file)."""
    pos = torch.arange(positions, dtype=torch.float32, device=device)
    tabs = [torch.outer(pos, rope_inv_freq(n, device)) for n in rope_split(head_dim)]
    return torch.cat(tabs, dim=1)


@dataclass
class RopeCache:
    """cos / sin of the angles of every video token of one grid, [n_tokens, 1, head_dim/2] float32.
    Built once per forward and shared by all blocks."""

    cos: torch.Tensor
    sin: torch.Tensor

    @property
    def num_tokens(self) -> int:
        return self.cos.shape[0]


def build_rope(grid: tuple[int, int, int], head_dim: int, device: torch.device | str | None = None,
               max_positions: int = 1024) -> RopeCache:
    """Per-token rotary angles for a (f, h, w) token grid in frame-major order (§5.2, §5.11)."""
    f, h, w = grid
    if max(f, h, w) > max_positions:
        raise ValueError(f"grid {grid} exceeds the RoPE table of {max_positions} positions per axis")
    n_t, n_h, n_w = rope_split(head_dim)
    ang_t = torch.outer(torch.arange(f, dtype=torch.float32, device=device), rope_inv_freq(n_t, device))
    ang_h = torch.outer(torch.arange(h, dtype=torch.float32, device=device), rope_inv_freq(n_h, device))
    ang_w = torch.outer(torch.arange(w, dtype=torch.float32, device=device), rope_inv_freq(n_w, device))
    ang = torch.cat([
        ang_t[:, None, None, :].expand(f, h, w, n_t),
        ang_h[None, :, None, :].expand(f, h, w, n_h),
        ang_w[None, None, :, :].expand(f, h, w, n_w),
    ], dim=-1).reshape(f * h * w, 1, head_dim // 2)
    return rope_cache_from_angles(ang)


def rope_cache_from_angles(angles: torch.Tensor) -> RopeCache:
    # torch.polar reproduces the official complex table bit for bit (cos/sin differ by 1 ulp)
    z = torch.polar(torch.ones_like(angles), angles)
    return RopeCache(z.real.contiguous(), z.imag.contiguous())


def apply_rope(x: torch.Tensor, rope: RopeCache) -> torch.Tensor:
    """Rotate adjacent channel pairs (2j = real, 2j+1 = imaginary) of x [B, L, H, d] in float32;
    tokens beyond the grid (padding) are left unchanged (§5.11)."""
    n = rope.num_tokens
    xr = x[:, :n].float().unflatten(-1, (-1, 2))
    a, b = xr[..., 0], xr[..., 1]
    out = torch.stack([a * rope.cos - b * rope.sin, a * rope.sin + b * rope.cos], dim=-1)
    out = out.flatten(-2).to(x.dtype)
    if n < x.shape[1]:
        out = torch.cat([out, x[:, n:]], dim=1)
    return out
