"""The AnyTalker DiT: Wan2.1 image-to-video DiT with AnyTalker's per-identity audio path.

Section numbers (§) refer to ``shared/spec/anytalker-model.md``. Module and parameter names are the
official state-dict names (§4), so the released checkpoints load strictly.

Two variants (§1):

- AF (AnyTalker-1.3B): each block's cross-attention is :class:`AudioFaceCrossAttention` (AFCA):
  one query attends to text, to the global image tokens and, once per identity with shared
  weights, to [face tokens ; audio tokens] under a temporal audio mask; per-identity outputs are
  scaled by that identity's soft face token mask and summed before the output projection (§5.12).
- legacy (AnyTalker-14B): plain image-to-video cross-attention (with the image tokens also in the
  text keys) followed by a separate :class:`LegacyAudioCrossAttention` sub-layer that attends per
  latent frame (§5.13).

Identities: any number N >= 1. Their K/V projections run as one batched matmul and their
attention as one batched SDPA call when all identities have the same token counts (always the
case in the pipeline); otherwise a per-identity loop is used.

Precision (§6): the residual stream, norms, modulation, RoPE, time embedding and head run in
float32; linears and attention run in the dtype of the weights (``model.to(torch.bfloat16)`` for
inference; float32 reproduces the golden vectors).

This module holds the block and the top-level DiT; the attention modules and the temporal audio
mask are in ``attention.py``.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .attention import (  # noqa: F401  (the attention modules and the temporal mask re-exported)
    AFCA_MODES,
    TEMPORAL_STRIDE,
    AudioFaceCrossAttention,
    ImageTextCrossAttention,
    LegacyAudioCrossAttention,
    SelfAttention,
    TemporalLayout,
    stack_identities,
    build_temporal_mask,
    temporal_mask_frames,
)
from .audio import AudioProjection, LegacyAudioProjection, regroup_legacy_audio
from .config import AnyTalkerConfig
from .layers import (
    LayerNorm32,
    RopeCache,
    build_rope,
    layer_norm_fp32,
    linear_fp32,
    sinusoidal_embedding,
)


class AnyTalkerBlock(nn.Module):
    """One DiT block (§5.10): modulated self-attention (gated), cross-attention (no modulation,
    no gate), legacy audio sub-layer (no gate), modulated FFN (gated)."""

    def __init__(self, cfg: AnyTalkerConfig) -> None:
        super().__init__()
        dim, eps = cfg.dim, cfg.eps
        self.eps = eps
        self.legacy = cfg.is_legacy
        self.modulation = nn.Parameter(torch.randn(1, 6, dim) / dim ** 0.5)
        self.self_attn = SelfAttention(dim, cfg.num_heads, eps)
        self.norm3 = LayerNorm32(dim, eps=eps, elementwise_affine=True)
        if self.legacy:
            self.cross_attn = ImageTextCrossAttention(dim, cfg.num_heads, eps)
            self.audio_cross_attn = LegacyAudioCrossAttention(dim, cfg.num_heads, cfg.audio_output_dim)
            self.norm_x = LayerNorm32(dim, eps=eps, elementwise_affine=True) if cfg.norm_input_visual else None
        else:
            self.cross_attn = AudioFaceCrossAttention(dim, cfg.num_heads, eps)
        self.ffn = nn.Sequential(nn.Linear(dim, cfg.ffn_dim), nn.GELU(approximate="tanh"),
                                 nn.Linear(cfg.ffn_dim, dim))

    def forward(self, x: torch.Tensor, e0: torch.Tensor, rope: RopeCache, valid_len: int,
                context: torch.Tensor, context_img: torch.Tensor, audio, faces, face_masks,
                temporal: TemporalLayout | None = None, latent_frames: int = 1,
                tokens_per_frame: int | None = None) -> torch.Tensor:
        """x: float32 residual stream [B, L, D]; e0: float32 [B, 6, D]. ``temporal``: the AF
        temporal audio mask; ``latent_frames`` / ``tokens_per_frame``: the legacy layer's frames."""
        cd = self.ffn[0].weight.dtype
        s0, c0, g0, s1, c1, g1 = (self.modulation.float() + e0).unbind(1)
        s0, c0, g0, s1, c1, g1 = (t.unsqueeze(1) for t in (s0, c0, g0, s1, c1, g1))
        u = layer_norm_fp32(x, self.eps) * (1 + c0) + s0
        x = x + self.self_attn(u.to(cd), rope, valid_len).float() * g0
        z = self.norm3(x).to(cd)
        if self.legacy:
            x = x + self.cross_attn(z, context, context_img).float()
            z = (self.norm_x(x) if self.norm_x is not None else x).to(cd)
            x = x + self.audio_cross_attn(z, audio, faces, face_masks, latent_frames, tokens_per_frame).float()
        else:
            x = x + self.cross_attn(z, context, context_img, audio, faces, face_masks, temporal).float()
        u = layer_norm_fp32(x, self.eps) * (1 + c1) + s1
        return x + self.ffn(u.to(cd)).float() * g1


class Head(nn.Module):
    """Output head (§5.14): (s, c) = modulation + e (the time embedding, not e0);
    Lin(LN(x) * (1 + c) + s), all in float32."""

    def __init__(self, dim: int, out_features: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.modulation = nn.Parameter(torch.randn(1, 2, dim) / dim ** 0.5)
        self.head = nn.Linear(dim, out_features)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        shift, scale = (self.modulation.float() + e.float().unsqueeze(1)).unbind(1)
        u = layer_norm_fp32(x, self.eps) * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)
        return linear_fp32(self.head, u)


class CLIPProjection(nn.Module):
    """``img_emb`` / ``audio_ref_emb`` (§5.5): LN(clip, eps 1e-5) -> Lin -> GELU(exact) -> Lin(clip, D)
    -> LN(D, eps 1e-5), applied to CLIP tokens [B, K, clip_dim]."""

    def __init__(self, clip_dim: int, dim: int) -> None:
        super().__init__()
        # eps 1e-5 = torch's default LayerNorm eps, used by the official MLPProj (§4.1)
        self.proj = nn.Sequential(LayerNorm32(clip_dim, eps=1e-5), nn.Linear(clip_dim, clip_dim),
                                  nn.GELU(), nn.Linear(clip_dim, dim), LayerNorm32(dim, eps=1e-5))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.proj(tokens.to(self.proj[1].weight.dtype))


# =========================================================================== the DiT
class AnyTalkerDiT(nn.Module):
    """The AnyTalker DiT, both variants, with the official state-dict names.

    Build it with an :class:`AnyTalkerConfig` (presets ``AnyTalkerConfig.af_1_3b()`` and
    ``.legacy_14b()``), or load a checkpoint with :func:`..checkpoint.load_anytalker_dit`.
    """

    def __init__(self, cfg: AnyTalkerConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or AnyTalkerConfig()
        self.config = cfg
        dim = cfg.dim
        self.patch_embedding = nn.Conv3d(cfg.in_dim, dim, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        self.text_embedding = nn.Sequential(nn.Linear(cfg.text_dim, dim), nn.GELU(approximate="tanh"),
                                            nn.Linear(dim, dim))
        self.time_embedding = nn.Sequential(nn.Linear(cfg.freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
        self.blocks = nn.ModuleList([AnyTalkerBlock(cfg) for _ in range(cfg.num_layers)])
        p_t, p_h, p_w = cfg.patch_size
        self.head = Head(dim, cfg.out_dim * p_t * p_h * p_w, cfg.eps)
        self.img_emb = CLIPProjection(cfg.clip_dim, dim)
        self.audio_ref_emb = CLIPProjection(cfg.clip_dim, dim)
        if cfg.is_legacy:
            self.audio_proj = LegacyAudioProjection(
                cfg.audio_window, cfg.audio_window_vf, cfg.audio_blocks, cfg.audio_channels,
                cfg.audio_intermediate_dim, cfg.audio_output_dim, cfg.audio_context_tokens, cfg.norm_output_audio)
        else:
            self.audio_emb = AudioProjection(cfg.audio_window, cfg.audio_blocks, cfg.audio_channels,
                                             cfg.audio_intermediate_dim, dim, cfg.audio_context_tokens)
        # how the AF temporal audio mask is applied (see TemporalLayout): "auto" | "grouped" | "masked"
        self.afca_mode = "auto"

    @property
    def dtype(self) -> torch.dtype:
        return self.patch_embedding.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.patch_embedding.weight.device

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        x: torch.Tensor | Sequence[torch.Tensor],
        t: torch.Tensor | int,
        context: torch.Tensor | Sequence[torch.Tensor],
        clip_fea: torch.Tensor,
        y: torch.Tensor | Sequence[torch.Tensor],
        audio: Sequence[torch.Tensor] = (),
        ref_faces: Sequence[torch.Tensor] = (),
        face_masks: Sequence[torch.Tensor] = (),
        seq_len: int | None = None,
        intermediates: dict | None = None,
    ) -> torch.Tensor:
        """One DiT evaluation (§5).

        x: noisy latent [B, 16, f, H, W] or a list of [16, f, H, W]; t: timestep(s) [B] or [1]
        (integer, §10.1); context: text tokens, a list of [n_i, text_dim] (real tokens only) or a
        tensor [B, n, text_dim]; clip_fea: global CLIP tokens [B, K, clip_dim]; y: conditioning
        [B, 20, f, H, W] or list; per identity i (left to right, paired by index): audio[i]
        windowed wav2vec features [F, W, layers, width] or [B, F, ...], ref_faces[i] face CLIP
        tokens [B, K, clip_dim], face_masks[i] token mask [B, 1, f, H/2, W/2] (or already flat
        [B, L, 1]); seq_len: pad video tokens to this length (default: no padding).
        ``intermediates``: if a dict is given it is filled with named intermediate tensors (the
        names of the golden files' ``dbg.*`` entries).

        Returns the velocity prediction [B, 16, f, H, W] in float32. The unconditional CFG pass
        is the same call with the negative prompt and zero audio features (§10.2).
        """
        cfg = self.config
        cd, dev = self.dtype, self.device
        dbg = intermediates
        x = _batch(x).to(device=dev, dtype=cd)
        y = _batch(y).to(device=dev, dtype=cd)
        b = x.shape[0]

        # §5.2 patch embedding, frame-major token order
        h = self.patch_embedding(torch.cat([x, y], dim=1))
        if dbg is not None:
            dbg["patch_embedding.0"] = h
        grid = tuple(h.shape[2:])
        n_tok = grid[0] * grid[1] * grid[2]
        seq_len = n_tok if seq_len is None else int(seq_len)
        if seq_len < n_tok:
            raise ValueError(f"seq_len {seq_len} < {n_tok} video tokens")
        h = h.flatten(2).transpose(1, 2).float()  # float32 residual stream (§6)
        if seq_len > n_tok:
            h = torch.cat([h, h.new_zeros(b, seq_len - n_tok, h.shape[2])], dim=1)
        rope = build_rope(grid, cfg.head_dim, dev, cfg.rope_max_positions)

        # §5.3 time embedding and the six modulation vectors, float32
        t = torch.as_tensor(t, device=dev).reshape(-1)
        if t.numel() == 1 and b > 1:
            t = t.expand(b)
        e = linear_fp32(self.time_embedding[2], F.silu(linear_fp32(self.time_embedding[0],
                                                                     sinusoidal_embedding(t, cfg.freq_dim))))
        e0 = linear_fp32(self.time_projection[1], F.silu(e))
        if dbg is not None:
            dbg["time_embedding.0"], dbg["time_projection.0"] = e, e0
        e0 = e0.unflatten(1, (6, cfg.dim))

        # §5.4 text, zero-padded to text_len (the padded rows are attended to)
        txt = self.text_embedding(_pad_text(context, cfg.text_len, b).to(device=dev, dtype=cd))
        # §5.5 image and face tokens
        clip = _expand_batch(self.img_emb(clip_fea.to(dev)), b)
        if dbg is not None:
            dbg["text_embedding.0"], dbg["img_emb.0"] = txt, clip

        n_id = min(len(audio), len(ref_faces), len(face_masks))
        faces = [_expand_batch(self.audio_ref_emb(r.to(dev)), b) for r in ref_faces[:n_id]]
        masks = [_flatten_mask(m, seq_len, b).to(device=dev, dtype=cd) for m in face_masks[:n_id]]
        if dbg is not None:
            for i in range(n_id):
                dbg[f"audio_ref_emb.{i}"], dbg[f"face_mask_flat.{i}"] = faces[i], masks[i]

        temporal = None
        if cfg.is_legacy:
            aud = []
            for i, a in enumerate(audio[:n_id]):  # §5.7, per latent frame
                first, latter = regroup_legacy_audio(a.to(device=dev), grid[0], cfg.vae_scale)
                aud.append(_expand_batch(self.audio_proj(first, latter), b))
                if dbg is not None:
                    dbg[f"audio_proj.in_first.{i}"], dbg[f"audio_proj.in_latter.{i}"] = first, latter
                    dbg[f"audio_proj.{i}"] = aud[-1]
            context_txt = torch.cat([clip, txt], dim=1)  # §5.13: [image ; text] as text keys
        else:
            aud = [_expand_batch(self.audio_emb(a.to(device=dev)), b) for a in audio[:n_id]]  # §5.6, per video frame
            if dbg is not None:
                for i, a in enumerate(aud):
                    dbg[f"audio_emb.{i}"] = a
            if self.afca_mode not in AFCA_MODES:
                raise ValueError(f"afca_mode must be one of {AFCA_MODES}, not {self.afca_mode!r}")
            if aud:  # §5.8, from the first identity's audio; applied by the AFCA
                temporal = TemporalLayout(grid[0], grid[1] * grid[2], aud[0].shape[1], aud[0].shape[2],
                                          mode=self.afca_mode)
            context_txt = txt
        id_audio, id_faces, id_masks = stack_identities(aud, n_id), stack_identities(faces, n_id), \
            stack_identities(masks, n_id)

        for i, block in enumerate(self.blocks):
            h = block(h, e0, rope, n_tok, context_txt, clip, id_audio, id_faces, id_masks,
                      temporal=temporal, latent_frames=grid[0], tokens_per_frame=grid[1] * grid[2])
            if dbg is not None:
                dbg[f"blocks.{i}.0"] = h

        out = self.head(h, e)  # [B, L, prod(patch) * out_dim], float32
        if dbg is not None:
            dbg["head.0"] = out
        return self.unpatchify(out[:, :n_tok], grid)

    def unpatchify(self, tokens: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        """[B, f*h*w, p_t*p_h*p_w*C] -> [B, C, f*p_t, h*p_h, w*p_w] (§5.14: each token's outputs are
        (p_t, p_h, p_w, C) with C fastest)."""
        f, hh, ww = grid
        p_t, p_h, p_w = self.config.patch_size
        c = self.config.out_dim
        u = tokens.reshape(tokens.shape[0], f, hh, ww, p_t, p_h, p_w, c)
        u = u.permute(0, 7, 1, 4, 2, 5, 3, 6)
        return u.reshape(tokens.shape[0], c, f * p_t, hh * p_h, ww * p_w)


# =========================================================================== input helpers
def _batch(x: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x if x.ndim == 5 else x.unsqueeze(0)
    return torch.stack(list(x))


def _expand_batch(t: torch.Tensor, batch: int) -> torch.Tensor:
    """Inputs given once (batch 1) are shared by every sample of a batch."""
    return t.expand(batch, *t.shape[1:]) if t.shape[0] == 1 and batch > 1 else t


def _pad_text(context: torch.Tensor | Sequence[torch.Tensor], text_len: int, batch: int) -> torch.Tensor:
    """Zero-pad each sample's text tokens to text_len rows (§5.4)."""
    if isinstance(context, torch.Tensor):
        context = [context] if context.ndim == 2 else list(context)
    if len(context) == 1 and batch > 1:
        context = context * batch
    rows = []
    for c in context:
        if c.shape[0] > text_len:
            raise ValueError(f"{c.shape[0]} text tokens > text_len {text_len}")
        rows.append(torch.cat([c, c.new_zeros(text_len - c.shape[0], c.shape[1])]))
    return torch.stack(rows)


def _flatten_mask(mask: torch.Tensor, seq_len: int, batch: int) -> torch.Tensor:
    """Face token mask [B, C, f, h, w] -> [B, seq_len, 1]: channel 0, frame-major flatten, zero rows
    for padding tokens (§5.9). A 3-D mask is taken as already flattened."""
    if mask.ndim == 5:
        mask = mask[:, 0].flatten(1).unsqueeze(-1)
    elif mask.ndim != 3:
        raise ValueError(f"face mask must be [B, C, f, h, w] or [B, L, 1], got {tuple(mask.shape)}")
    if mask.shape[1] < seq_len:
        mask = torch.cat([mask, mask.new_zeros(mask.shape[0], seq_len - mask.shape[1], 1)], dim=1)
    if mask.shape[0] == 1 and batch > 1:
        mask = mask.expand(batch, -1, -1)
    return mask
