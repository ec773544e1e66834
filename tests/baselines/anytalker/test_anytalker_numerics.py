"""Properties of the AnyTalker DiT beyond the golden cases: any number of identities, the two
ways of applying the temporal audio mask, token padding, and the half-precision path."""

from __future__ import annotations

import pytest
import torch

from interactive_eyes.baselines.anytalker import AnyTalkerConfig, AnyTalkerDiT
from interactive_eyes.baselines.anytalker.model import (
    AudioFaceCrossAttention,
    LegacyAudioCrossAttention,
    TemporalLayout,
    build_temporal_mask,
)

DIM, HEADS = 32, 2


def _afca(seed=0):
    torch.manual_seed(seed)
    layer = AudioFaceCrossAttention(DIM, HEADS).eval()
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(0.1 * torch.randn_like(p))  # non-trivial norm weights
    return layer


def _ids(n, *shape):
    return [torch.randn(*shape) for _ in range(n)]


@pytest.mark.parametrize("n", [1, 4, 5])
def test_afca_identities_are_independent_and_summed(n):
    """n identities in one batched call == o(text + image + sum_i M_i * O_i) with each O_i from a
    single-identity call: shared weights, no identity count baked in."""
    layer = _afca()
    f, s, frames, tok = 3, 6, 9, 2
    x, txt, img = torch.randn(1, f * s, DIM), torch.randn(1, 5, DIM), torch.randn(1, 4, DIM)
    audio, faces = _ids(n, 1, frames, tok, DIM), _ids(n, 1, 3, DIM)
    masks = [torch.rand(1, f * s, 1) for _ in range(n)]
    layout = TemporalLayout(f, s, frames, tok)
    with torch.no_grad():
        out = layer(x, txt, img, audio, faces, masks, layout)
        parts: dict = {}
        layer(x, txt, img, [], [], [], None, branches=parts)
        total = parts["text_attn"] + parts["img_attn"]
        for i in range(n):
            single: dict = {}
            layer(x, txt, img, audio[i:i + 1], faces[i:i + 1], masks[i:i + 1], layout, branches=single)
            total = total + single["af_attn.0"] * masks[i]
        ref = layer.o(total)
    assert (out - ref).abs().max() < 1e-5


def test_afca_unequal_identities_loop():
    """Identities with different face-token counts go through the per-identity loop."""
    layer = _afca(1)
    x, txt, img = torch.randn(1, 12, DIM), torch.randn(1, 5, DIM), torch.randn(1, 4, DIM)
    audio = _ids(2, 1, 5, 2, DIM)
    faces = [torch.randn(1, 3, DIM), torch.randn(1, 7, DIM)]
    masks = [torch.rand(1, 12, 1) for _ in range(2)]
    layout = TemporalLayout(2, 6, 5, 2)
    with torch.no_grad():
        out = layer(x, txt, img, audio, faces, masks, layout)
        a = layer(x, txt, img, audio[:1], faces[:1], masks[:1], layout)
        b = layer(x, txt, img, audio[1:], faces[1:], masks[1:], layout)
        base = layer(x, txt, img, [], [], [], None)
    # o is affine: o(T + A + B) = o(T + A) + o(T + B) - o(T)
    assert (out - (a + b - base)).abs().max() < 1e-5


@pytest.mark.parametrize("frames", [13, 17, 9, 5])
def test_temporal_mask_grouped_equals_masked(frames):
    """Grouped execution of the temporal mask equals the explicit boolean mask, also when the audio
    is longer than 4(f-1)+1 frames, and 'auto' falls back to the mask when it is shorter."""
    layer = _afca(2)
    f, s, tok, n = 4, 6, 3, 2
    x, txt, img = torch.randn(1, f * s, DIM), torch.randn(1, 5, DIM), torch.randn(1, 4, DIM)
    audio, faces = _ids(n, 1, frames, tok, DIM), _ids(n, 1, 4, DIM)
    masks = [torch.rand(1, f * s, 1) for _ in range(n)]
    explicit = build_temporal_mask(f, s, frames, tok)
    with torch.no_grad():
        ref = layer(x, txt, img, audio, faces, masks, explicit)
        for mode in ("auto", "grouped", "masked"):
            out = layer(x, txt, img, audio, faces, masks, TemporalLayout(f, s, frames, tok, mode=mode))
            assert (out - ref).abs().max() < 1e-5, mode
    assert TemporalLayout(f, s, frames, tok).grouped_ok(f * s) == (frames >= 4 * (f - 1) + 1)


def test_legacy_identities_summed():
    torch.manual_seed(3)
    layer = LegacyAudioCrossAttention(DIM, HEADS, audio_dim=12).eval()
    f, s, n = 3, 4, 4
    x = torch.randn(1, f * s, DIM)
    audio, faces = _ids(n, 1, f, 2, 12), _ids(n, 1, 5, DIM)
    masks = [torch.rand(1, f * s, 1) for _ in range(n)]
    with torch.no_grad():
        out = layer(x, audio, faces, masks, f)
        singles = [layer(x, audio[i:i + 1], faces[i:i + 1], masks[i:i + 1], f) for i in range(n)]
        assert torch.equal(layer(x, [], [], [], f), torch.zeros_like(x))  # no identity: zeros, no bias
    bias = layer.proj.bias.detach()
    assert (out - (sum(singles) - (n - 1) * bias)).abs().max() < 1e-5


def _tiny_model(variant: str) -> AnyTalkerDiT:
    torch.manual_seed(0)
    cfg = AnyTalkerConfig(variant=variant, dim=64, ffn_dim=96, num_heads=2, num_layers=2, text_dim=24,
                          text_len=8, clip_dim=16, audio_blocks=2, audio_channels=8, audio_intermediate_dim=16,
                          audio_context_tokens=3, audio_output_dim=12)
    return AnyTalkerDiT(cfg).eval()


def _tiny_inputs(model: AnyTalkerDiT, n: int, f: int = 3, hw=(4, 6), seed: int = 1) -> dict:
    cfg = model.config
    g = torch.Generator().manual_seed(seed)
    frames = 4 * (f - 1) + 1
    lat = (2 * hw[0], 2 * hw[1])
    return dict(
        x=[torch.randn(16, f, *lat, generator=g)],
        t=torch.tensor([937]),
        context=[torch.randn(5, cfg.text_dim, generator=g)],
        clip_fea=torch.randn(1, 9, cfg.clip_dim, generator=g),
        y=[torch.randn(20, f, *lat, generator=g)],
        audio=[torch.randn(frames, cfg.audio_window, cfg.audio_blocks, cfg.audio_channels, generator=g)
               for _ in range(n)],
        ref_faces=[torch.randn(1, 7, cfg.clip_dim, generator=g) for _ in range(n)],
        face_masks=[torch.rand(1, 1, f, *hw, generator=g) for _ in range(n)],
    )


@pytest.mark.parametrize("variant", ["af", "legacy"])
def test_dit_padding_and_identity_counts(variant):
    model = _tiny_model(variant)
    for n in (0, 1, 4):
        inputs = _tiny_inputs(model, n)
        with torch.no_grad():
            out = model(**inputs)
            padded = model(**inputs, seq_len=80)  # 72 video tokens + 8 padding tokens
        assert out.shape == (1, 16, 3, 8, 12) and out.dtype == torch.float32
        assert (out - padded).abs().max() < 1e-5


@pytest.mark.parametrize("variant", ["af", "legacy"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_dit_half_precision_path(variant, dtype):
    """Half-precision weights: linears and attention in that dtype, residual stream / norms /
    modulation / head in float32; the output stays float32 and close to the fp32 reference."""
    model = _tiny_model(variant)
    inputs = _tiny_inputs(model, 2)
    with torch.no_grad():
        ref = model(**inputs)
        out = model.to(dtype)(**inputs)
    assert out.dtype == torch.float32
    rel = (out - ref).abs().max() / ref.abs().max()
    assert rel < (5e-2 if dtype == torch.bfloat16 else 1e-2), float(rel)


@pytest.mark.parametrize("variant", ["af", "legacy"])
def test_dit_batch_of_two(variant):
    """A batch of two latents with shared conditioning equals two single-sample calls."""
    model = _tiny_model(variant)
    a, b = _tiny_inputs(model, 2, seed=1), _tiny_inputs(model, 2, seed=2)
    batched = dict(a, x=a["x"] + b["x"], y=a["y"] + b["y"], t=torch.tensor([937, 500]),
                   context=a["context"] + b["context"])
    with torch.no_grad():
        out = model(**batched)
        one = model(**a)
        two = model(**dict(a, x=b["x"], y=b["y"], t=torch.tensor([500]), context=b["context"]))
    assert (out - torch.cat([one, two])).abs().max() < 1e-5
