"""AnyTalker DiT attention: self-attention, image/text cross-attention, the per-identity audio paths.

Section numbers (§) refer to ``shared/spec/anytalker-model.md``; module and parameter names are the
official state-dict names (§4). The AF variant's :class:`AudioFaceCrossAttention` (AFCA, §5.12)
and the legacy variant's :class:`LegacyAudioCrossAttention` (§5.13) are described in
``model.py``'s docstring; the temporal audio mask (§5.8) is here because only they read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import nn

from .layers import RMSNorm, RopeCache, apply_rope, attention

# Video frames per latent frame: the Wan VAE's temporal stride (§3.2). Latent frame t >= 1 encodes
# video frames 4t-3..4t, which is what the AF temporal audio mask selects (§5.8).
TEMPORAL_STRIDE = 4

AFCA_MODES = ("auto", "grouped", "masked")


# =========================================================================== temporal audio mask
def temporal_mask_frames(latent_frames: int, audio_frames: int, stride: int = TEMPORAL_STRIDE,
                         device: torch.device | str | None = None) -> torch.Tensor:
    """[f, F] boolean: latent frame 0 sees every audio frame, latent frame t >= 1 sees audio frames
    stride*t - (stride-1) .. stride*t, clipped to the audio length (§5.8)."""
    t = torch.arange(latent_frames, device=device)[:, None]
    a = torch.arange(audio_frames, device=device)[None, :]
    return (t == 0) | ((a >= stride * t - (stride - 1)) & (a <= stride * t))


def build_temporal_mask(latent_frames: int, tokens_per_frame: int, audio_frames: int,
                        audio_tokens_per_frame: int, seq_len: int | None = None,
                        stride: int = TEMPORAL_STRIDE, device: torch.device | str | None = None) -> torch.Tensor:
    """The AF temporal audio mask [1, 1, L, F*T] (True = may attend), §5.8: every video token of
    latent frame t inherits row t, every audio frame expands to its T tokens (frame-major).
    Padding rows (seq_len > f*S) are all True (their outputs are discarded)."""
    frames = temporal_mask_frames(latent_frames, audio_frames, stride, device)
    mask = frames.repeat_interleave(tokens_per_frame, 0).repeat_interleave(audio_tokens_per_frame, 1)
    n = latent_frames * tokens_per_frame
    if seq_len is not None and seq_len > n:
        mask = torch.cat([mask, mask.new_ones(seq_len - n, mask.shape[1])], dim=0)
    return mask[None, None]


@dataclass
class TemporalLayout:
    """What the AFCA needs to apply the temporal audio mask (§5.8) without materialising it: the
    latent grid (f latent frames of S tokens) and the audio stream (F frames of T tokens) that the
    mask was built for (the first identity's, as in the official code).

    ``mode``: "grouped" attends per latent frame to only the audio frames that the mask allows
    (identical result, ~7x fewer keys at 81 frames, flash-attention eligible); "masked" uses the
    explicit boolean mask; "auto" picks "grouped" whenever the audio covers 4(f-1)+1 frames.
    """

    latent_frames: int
    tokens_per_frame: int
    audio_frames: int
    audio_tokens_per_frame: int
    stride: int = TEMPORAL_STRIDE
    mode: str = "auto"
    _mask: torch.Tensor | None = field(default=None, init=False, repr=False)

    def grouped_ok(self, seq_len: int) -> bool:
        return (self.audio_frames >= self.stride * (self.latent_frames - 1) + 1
                and seq_len >= self.latent_frames * self.tokens_per_frame)

    def mask(self, seq_len: int, device: torch.device) -> torch.Tensor:
        if self._mask is None or self._mask.shape[2] != seq_len or self._mask.device != device:
            self._mask = build_temporal_mask(self.latent_frames, self.tokens_per_frame, self.audio_frames,
                                             self.audio_tokens_per_frame, seq_len, self.stride, device)
        return self._mask


# =========================================================================== attention modules
class SelfAttention(nn.Module):
    """Block self-attention with q/k RMS norms over the full width and 3-D RoPE on q, k (§5.11)."""

    def __init__(self, dim: int, num_heads: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.o = nn.Linear(dim, dim)
        self.norm_q = RMSNorm(dim, eps)
        self.norm_k = RMSNorm(dim, eps)

    def forward(self, x: torch.Tensor, rope: RopeCache, valid_len: int | None = None) -> torch.Tensor:
        b, n, d = x.shape
        shape = (b, n, self.num_heads, self.head_dim)
        q = apply_rope(self.norm_q(self.q(x)).view(shape), rope)
        k = apply_rope(self.norm_k(self.k(x)).view(shape), rope)
        v = self.v(x).view(shape)
        if valid_len is not None and valid_len < n:  # keys limited to the true sequence length
            k, v = k[:, :valid_len], v[:, :valid_len]
        return self.o(attention(q, k, v).reshape(b, n, d))


class ImageTextCrossAttention(nn.Module):
    """Wan image-to-video cross-attention: one query, a text branch and an image branch, summed
    and projected once (§5.12 steps 1-3, §5.13). Neither branch has a key mask (§5.4)."""

    def __init__(self, dim: int, num_heads: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.o = nn.Linear(dim, dim)
        self.norm_q = RMSNorm(dim, eps)
        self.norm_k = RMSNorm(dim, eps)
        self.k_img = nn.Linear(dim, dim)
        self.v_img = nn.Linear(dim, dim)
        self.norm_k_img = RMSNorm(dim, eps)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        return t.view(*t.shape[:-1], self.num_heads, self.head_dim)

    def text_image(self, x: torch.Tensor, context: torch.Tensor, context_img: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns (q, text output, image output), heads split: [B, L, H, d]."""
        q = self._heads(self.norm_q(self.q(x)))
        o_txt = attention(q, self._heads(self.norm_k(self.k(context))), self._heads(self.v(context)))
        o_img = attention(q, self._heads(self.norm_k_img(self.k_img(context_img))),
                          self._heads(self.v_img(context_img)))
        return q, o_txt, o_img

    def forward(self, x: torch.Tensor, context: torch.Tensor, context_img: torch.Tensor) -> torch.Tensor:
        _, o_txt, o_img = self.text_image(x, context, context_img)
        return self.o((o_txt + o_img).flatten(2))


def stack_identities(items: Sequence[torch.Tensor] | torch.Tensor | None, n: int) -> torch.Tensor | list:
    """First n identities as one tensor [n, ...] when their shapes agree, else as a list."""
    if items is None:
        return []
    if isinstance(items, torch.Tensor):
        return items[:n]
    items = list(items)[:n]
    if items and all(t.shape == items[0].shape for t in items):
        return torch.stack(items)
    return items


def _count(items) -> int:
    return 0 if items is None else len(items)


def _as_tensor(items: torch.Tensor | list) -> torch.Tensor:
    return items if isinstance(items, torch.Tensor) else torch.stack(list(items))


class AudioFaceCrossAttention(ImageTextCrossAttention):
    """The AFCA layer of the AF variant (§5.12).

    out = o(O_txt + O_img + sum_i M_i * Attn(q, [Kf_i ; Ka_i], [Vf_i ; Va_i], mask)), with face keys
    first and always visible, the audio columns under the temporal mask, shared weights for all
    identities and n = min(#audio, #faces, #masks) identities paired by index.
    """

    def __init__(self, dim: int, num_heads: int, eps: float = 1e-6) -> None:
        super().__init__(dim, num_heads, eps)
        self.k_audio = nn.Linear(dim, dim)
        self.v_audio = nn.Linear(dim, dim)
        self.norm_k_audio = RMSNorm(dim, eps)
        self.k_face = nn.Linear(dim, dim)
        self.v_face = nn.Linear(dim, dim)
        self.norm_k_face = RMSNorm(dim, eps)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor,
        context_img: torch.Tensor,
        audio: Sequence[torch.Tensor] | torch.Tensor | None = None,
        faces: Sequence[torch.Tensor] | torch.Tensor | None = None,
        face_masks: Sequence[torch.Tensor] | torch.Tensor | None = None,
        temporal: TemporalLayout | torch.Tensor | None = None,
        use_token_mask: bool = True,
        branches: dict | None = None,
    ) -> torch.Tensor:
        """x [B, L, D] (after norm3); context [B, Lt, D]; context_img [B, Lc, D].

        Per identity (a sequence, or a tensor with a leading identity axis): audio [B, F, T, D],
        faces [B, K, D], face_masks [B, L, 1]. ``temporal``: None (every audio token visible), a
        boolean mask [B|1, 1, L, F*T] (applied to identities whose audio has F*T tokens, as in
        the official code), or a :class:`TemporalLayout`. ``branches``, when given, receives the
        raw per-branch outputs (``text_attn``, ``img_attn``, ``af_attn.<i>``), [B, L, D].
        """
        b, seq, dim = x.shape
        q, o_txt, o_img = self.text_image(x, context, context_img)
        total = o_txt + o_img
        if branches is not None:
            branches["text_attn"], branches["img_attn"] = o_txt.flatten(2), o_img.flatten(2)
        # identities pair by index; n = min(#audio, #faces, #masks) (§5.12 step 4)
        n = min(_count(audio), _count(faces))
        if face_masks is not None:
            n = min(n, _count(face_masks))
        if n > 0:
            a_id, f_id = stack_identities(audio, n), stack_identities(faces, n)
            if isinstance(a_id, torch.Tensor) and isinstance(f_id, torch.Tensor):
                outs = [self._identities(q, a_id, f_id, temporal)]  # [n, B, L, H, d], one batched call
            else:  # unequal token counts: one identity at a time
                outs = [self._identities(q, a[None], r[None], temporal) for a, r in zip(a_id, f_id)]
            o_id = torch.cat(outs).reshape(n, b, seq, dim)
            if branches is not None:
                for i in range(n):
                    branches[f"af_attn.{i}"] = o_id[i]
            if use_token_mask and face_masks is not None:
                o_id = o_id * _as_tensor(stack_identities(face_masks, n)).to(o_id.dtype)
            total = total + o_id.sum(0).view_as(total)
        return self.o(total.flatten(2))

    def _identities(self, q: torch.Tensor, audio: torch.Tensor, faces: torch.Tensor,
                    temporal: TemporalLayout | torch.Tensor | None) -> torch.Tensor:
        """m identities at once: q [B, L, H, d], audio [m, B, F, T, D], faces [m, B, K, D] ->
        [m, B, L, H, d]."""
        m, b, n_frames, n_tok = audio.shape[:4]
        seq, heads, hd = q.shape[1:]
        mb = m * b
        ka = self._heads(self.norm_k_audio(self.k_audio(audio))).reshape(mb, n_frames * n_tok, heads, hd)
        va = self._heads(self.v_audio(audio)).reshape(mb, n_frames * n_tok, heads, hd)
        kf = self._heads(self.norm_k_face(self.k_face(faces))).reshape(mb, -1, heads, hd)
        vf = self._heads(self.v_face(faces)).reshape(mb, -1, heads, hd)
        qm = q if m == 1 else q.unsqueeze(0).expand(m, *q.shape).reshape(mb, seq, heads, hd)

        layout = temporal if isinstance(temporal, TemporalLayout) else None
        if layout is not None and (layout.audio_frames != n_frames or layout.audio_tokens_per_frame != n_tok):
            layout = None  # the mask was built for another audio length: not applied (§5.12 step 4)
            temporal = None
        if layout is not None and layout.mode != "masked" and layout.grouped_ok(seq):
            out = self._grouped(qm, kf, vf, ka, va, layout, n_tok)
        else:
            mask = None
            if layout is not None:
                mask = layout.mask(seq, q.device)
            elif isinstance(temporal, torch.Tensor) and temporal.shape[-1] == n_frames * n_tok:
                mask = temporal.to(device=q.device, dtype=torch.bool)
                if mask.shape[0] not in (1, mb):  # one mask per sample: repeat for each identity
                    mask = mask.repeat(m, 1, 1, 1)
            if mask is not None:  # face columns always visible
                face_cols = mask.new_ones(*mask.shape[:-1], kf.shape[1])
                mask = torch.cat([face_cols, mask], dim=-1)
            out = attention(qm, torch.cat([kf, ka], 1), torch.cat([vf, va], 1), mask)
        return out.reshape(m, b, seq, heads, hd)

    @staticmethod
    def _grouped(q, kf, vf, ka, va, layout: TemporalLayout, n_tok: int) -> torch.Tensor:
        """The temporal mask applied by grouping (§5.8): queries of latent frame 0 see every audio
        token; queries of latent frame t >= 1 see only the tokens of audio frames 4t-3..4t, which
        for frames 1..4(f-1) are consecutive groups of 4 frames. Face tokens are visible to all."""
        mb, seq, heads, hd = q.shape
        f, s, stride = layout.latent_frames, layout.tokens_per_frame, layout.stride
        parts = [attention(q[:, :s], torch.cat([kf, ka], 1), torch.cat([vf, va], 1))]
        if f > 1:
            g = mb * (f - 1)
            lo, hi = n_tok, n_tok * (1 + stride * (f - 1))
            qr = q[:, s: f * s].reshape(g, s, heads, hd)

            def frames(face, aud):
                face_r = face.unsqueeze(1).expand(mb, f - 1, *face.shape[1:]).reshape(g, -1, heads, hd)
                return torch.cat([face_r, aud[:, lo:hi].reshape(g, stride * n_tok, heads, hd)], 1)

            parts.append(attention(qr, frames(kf, ka), frames(vf, va)).reshape(mb, (f - 1) * s, heads, hd))
        if seq > f * s:  # padding rows: discarded later (their face mask rows are zero)
            parts.append(q.new_zeros(mb, seq - f * s, heads, hd))
        return torch.cat(parts, 1)


class LegacyAudioCrossAttention(nn.Module):
    """``audio_cross_attn`` of the legacy variant (§5.13): MultiTalk-style per-latent-frame
    attention over [face tokens ; that frame's audio tokens], no q/k norms, no mask; per-identity
    outputs scaled by the face token masks, summed, then projected once. With no identity the
    layer returns zeros (no bias)."""

    def __init__(self, dim: int, num_heads: int, audio_dim: int = 768) -> None:
        super().__init__()
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.q_linear = nn.Linear(dim, dim)
        self.kv_linear = nn.Linear(audio_dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.k_face = nn.Linear(dim, dim)
        self.v_face = nn.Linear(dim, dim)

    def forward(
        self,
        x: torch.Tensor,
        audio: Sequence[torch.Tensor] | torch.Tensor | None,
        faces: Sequence[torch.Tensor] | torch.Tensor | None,
        face_masks: Sequence[torch.Tensor] | torch.Tensor | None,
        latent_frames: int,
        tokens_per_frame: int | None = None,
    ) -> torch.Tensor:
        """x [B, L, D] (after norm_x) holding f latent frames of S tokens (then padding, if any);
        per identity audio [B, f, T, Da], faces [B, K, D], face_masks [B, L, 1]."""
        b, seq, dim = x.shape
        n = min(_count(audio), _count(faces), _count(face_masks))
        if n == 0:
            return torch.zeros_like(x)
        f = latent_frames
        if tokens_per_frame is None:
            if seq % f:
                raise ValueError(f"sequence of {seq} tokens is not {f} latent frames of equal size")
            tokens_per_frame = seq // f
        s = tokens_per_frame
        heads, hd = self.num_heads, self.head_dim
        q = self.q_linear(x[:, : f * s]).reshape(b * f, s, heads, hd)
        a_id, f_id = stack_identities(audio, n), stack_identities(faces, n)
        m_id = stack_identities(face_masks, n)
        if isinstance(a_id, torch.Tensor) and isinstance(f_id, torch.Tensor):
            outs = [self._identities(q, a_id, f_id, b, f)]
        else:
            outs = [self._identities(q, a[None], r[None], b, f) for a, r in zip(a_id, f_id)]
        o_id = torch.cat(outs).reshape(n, b, f * s, dim)
        if seq > f * s:  # padding tokens get nothing
            o_id = torch.cat([o_id, o_id.new_zeros(n, b, seq - f * s, dim)], dim=2)
        return self.proj((o_id * _as_tensor(m_id).to(o_id.dtype)).sum(0))

    def _identities(self, q: torch.Tensor, audio: torch.Tensor, faces: torch.Tensor, b: int, f: int) -> torch.Tensor:
        """q [B*f, S, H, d]; audio [m, B, f, T, Da]; faces [m, B, K, D] -> [m, B*f, S, H, d]."""
        m, n_tok = audio.shape[0], audio.shape[3]
        heads, hd = self.num_heads, self.head_dim
        g = m * b * f
        if audio.shape[2] != f:
            raise ValueError(f"legacy audio has {audio.shape[2]} latent frames, the video {f}")
        # the 2D outputs of kv_linear are viewed as (2, heads, head_dim): index 0 keys, 1 values
        kv = self.kv_linear(audio.to(q.dtype)).view(g, n_tok, 2, heads, hd)
        n_face = faces.shape[2]

        def per_frame(t):  # [m, B, K, D] -> [m*B*f, K, H, d]: face tokens repeated for every frame
            return t.unsqueeze(2).expand(m, b, f, n_face, t.shape[-1]).reshape(g, n_face, heads, hd)

        k = torch.cat([per_frame(self.k_face(faces)), kv[:, :, 0]], 1)
        v = torch.cat([per_frame(self.v_face(faces)), kv[:, :, 1]], 1)
        qm = q if m == 1 else q.unsqueeze(0).expand(m, *q.shape).reshape(g, *q.shape[1:])
        return attention(qm, k, v).reshape(m, b * f, -1, heads, hd)


# =========================================================================== block, head, embeddings
