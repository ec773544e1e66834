"""Full-size AnyTalker architectures on the meta device, config JSON quirks, checkpoint loading.

The full-size models are built on the ``meta`` device: no parameter memory is allocated.
Expected key counts and parameter counts: spec §4.1 / §4.2.
"""

from __future__ import annotations

import pickle
import re
import warnings

import pytest
import torch

from interactive_eyes.baselines.anytalker import (
    AnyTalkerConfig,
    AnyTalkerDiT,
    CheckpointError,
    infer_config,
    load_anytalker_dit,
    read_state_dict,
)
from interactive_eyes.baselines.anytalker.checkpoint import detect_variant

# spec §4.1 / §4.2: (tensors, parameters, tensors per block) and a few documented shapes
FULL_SIZE = {
    "1.3B": (AnyTalkerConfig.af_1_3b, 1299, 1_900_507_712, 42, {
        "patch_embedding.weight": (1536, 36, 1, 2, 2),
        "text_embedding.0.weight": (1536, 4096),
        "time_projection.1.weight": (9216, 1536),
        "head.modulation": (1, 2, 1536),
        "head.head.weight": (64, 1536),
        "img_emb.proj.1.weight": (1280, 1280),
        "audio_ref_emb.proj.3.weight": (1536, 1280),
        "audio_emb.proj1.weight": (512, 46080),
        "audio_emb.proj3.weight": (49152, 512),
        "audio_emb.norm.weight": (1536,),
        "blocks.29.modulation": (1, 6, 1536),
        "blocks.0.cross_attn.k_face.weight": (1536, 1536),
        "blocks.0.cross_attn.norm_k_audio.weight": (1536,),
        "blocks.0.ffn.0.weight": (8960, 1536),
    }),
    "14B": (AnyTalkerConfig.legacy_14b, 1801, 20_987_819_584, 44, {
        "patch_embedding.weight": (5120, 36, 1, 2, 2),
        "head.head.weight": (64, 5120),
        "audio_proj.proj1.weight": (512, 46080),
        "audio_proj.proj1_vf.weight": (512, 73728),
        "audio_proj.proj3.weight": (24576, 512),
        "audio_proj.norm.weight": (768,),
        "blocks.39.audio_cross_attn.kv_linear.weight": (10240, 768),
        "blocks.0.audio_cross_attn.q_linear.weight": (5120, 5120),
        "blocks.0.audio_cross_attn.k_face.weight": (5120, 5120),
        "blocks.0.norm_x.weight": (5120,),
        "blocks.0.ffn.0.weight": (13824, 5120),
    }),
}


@pytest.mark.parametrize("name", list(FULL_SIZE))
def test_full_size_on_meta(name):
    make, n_tensors, n_params, per_block, shapes = FULL_SIZE[name]
    cfg = make()
    with torch.device("meta"):
        model = AnyTalkerDiT(cfg)
    sd = model.state_dict()
    assert all(t.is_meta for t in sd.values())  # nothing allocated
    assert len(sd) == n_tensors
    assert sum(t.numel() for t in sd.values()) == n_params
    assert sum(1 for k in sd if k.startswith("blocks.0.")) == per_block
    assert len({k.split(".")[1] for k in sd if k.startswith("blocks.")}) == cfg.num_layers
    for key, shape in shapes.items():
        assert tuple(sd[key].shape) == shape, key
    # no audio keys of the other variant, no RoPE buffer (§4: the table is not in the state dict)
    other = "blocks.0.cross_attn.k_face.weight" if cfg.is_legacy else "blocks.0.audio_cross_attn.kv_linear.weight"
    assert other not in sd and not any("freqs" in k or "rope" in k for k in sd)
    # the variant and every size are recovered from the (meta) shapes alone
    assert detect_variant(sd) == cfg.variant
    assert infer_config(sd) == cfg
    assert infer_config(sd, cfg) == cfg
    # cross-check against the official JSON: agreeing, then disagreeing
    official = cfg.to_official_json()
    assert AnyTalkerConfig.from_official_json(official) == cfg
    assert infer_config(sd, official) == cfg
    with pytest.raises(CheckpointError, match="num_layers"):
        infer_config(sd, dict(official, num_layers=cfg.num_layers - 1))
    with pytest.raises(CheckpointError, match="variant"):
        infer_config(sd, dict(official, legacy_audio_cross_attn=not cfg.is_legacy))


def _block_pattern(keys) -> set[str]:
    return {re.sub(r"^blocks\.\d+\.", "blocks.N.", k) for k in keys}


@pytest.mark.parametrize("golden_name,name", [("dit_af_tiny", "1.3B"), ("dit_legacy_tiny", "14B")])
def test_golden_key_names_match_full_size(gk, golden_name, name):
    """The golden tiny DiTs carry the real checkpoints' key names (README): the full-size model
    must have exactly the same names (modulo the block count)."""
    weights = gk.weights_of(gk.load(golden_name))
    with torch.device("meta"):
        full = AnyTalkerDiT(FULL_SIZE[name][0]())
    assert _block_pattern(weights) == _block_pattern(full.state_dict())


# --------------------------------------------------------------------------- config JSON
def test_official_json_quirks():
    data = {"model_type": "a2v_af", "dim": 5120, "ffn_dim": 13824, "num_heads": 40, "num_layers": 40,
            "in_dim": 36, "legacy_audio_cross_attn": True, "intermediate_dim": 512, "context_tokens": 32,
            "audio_output_dim": 768, "audio_window": 5, "vae_scale": 4, "norm_input_visual": True,
            "norm_output_audio": True, "_class_name": "X", "temporal_align": False, "unknown_key": 1,
            # §3.1: silently dropped by the official code
            "text_dim": 64, "qk_norm": False, "patch_size": [1, 4, 4], "window_size": [8, 8]}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cfg = AnyTalkerConfig.from_official_json(data)
    assert any("ignored" in str(w.message) for w in caught)
    assert cfg == AnyTalkerConfig.legacy_14b()
    assert cfg.text_dim == 4096 and cfg.patch_size == (1, 2, 2)
    # AF: the JSON's audio-projection fields are unused by the official code
    af = AnyTalkerConfig.from_official_json({"model_type": "a2v_af", "dim": 1536, "ffn_dim": 8960, "num_heads": 12,
                                             "num_layers": 30, "in_dim": 36, "intermediate_dim": 7,
                                             "context_tokens": 3})
    assert af == AnyTalkerConfig.af_1_3b()
    with pytest.raises(ValueError, match="model_type"):
        AnyTalkerConfig.from_official_json({"model_type": "t2v"})


# --------------------------------------------------------------------------- checkpoints
def _tiny(variant: str = "af", **kw) -> AnyTalkerConfig:
    base = dict(variant=variant, dim=64, ffn_dim=96, num_heads=2, num_layers=2, text_dim=24, text_len=8,
                clip_dim=16, audio_blocks=2, audio_channels=8, audio_intermediate_dim=16,
                audio_context_tokens=3, audio_output_dim=12)
    base.update(kw)
    return AnyTalkerConfig(**base)


def _random_state(cfg: AnyTalkerConfig, seed: int = 0) -> dict:
    torch.manual_seed(seed)
    model = AnyTalkerDiT(cfg)
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("variant", ["af", "legacy"])
def test_checkpoint_roundtrip_keeps_dtype(tmp_path, variant):
    cfg = _tiny(variant)
    sd = {k: v.to(torch.bfloat16) for k, v in _random_state(cfg).items()}
    path = tmp_path / "ckpt.pth"
    torch.save({"model": sd, "step": 7}, path)  # the official layout: weights under "model"
    model = load_anytalker_dit(path, cfg)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}  # stored dtype kept (§4)
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    for k, v in model.state_dict().items():
        assert torch.equal(v, sd[k]), k
    assert detect_variant(read_state_dict(path)) == variant
    # the same weights as safetensors, cast on load
    from safetensors.torch import save_file

    st = tmp_path / "ckpt.safetensors"
    save_file(sd, str(st))
    model32 = load_anytalker_dit(st, cfg, dtype=torch.float32)
    assert {p.dtype for p in model32.parameters()} == {torch.float32}


def test_checkpoint_errors_name_keys():
    cfg = _tiny("af")
    sd = _random_state(cfg)
    missing = dict(sd)
    del missing["blocks.1.cross_attn.k_audio.weight"]
    with pytest.raises(CheckpointError, match=r"missing.*blocks\.1\.cross_attn\.k_audio\.weight"):
        load_anytalker_dit(missing, cfg)
    extra = dict(sd, **{"blocks.0.cross_attn.bogus.weight": torch.zeros(1)})
    with pytest.raises(CheckpointError, match=r"unexpected.*blocks\.0\.cross_attn\.bogus\.weight"):
        load_anytalker_dit(extra, cfg)
    bad = dict(sd, **{"blocks.0.ffn.2.bias": torch.zeros(5)})
    with pytest.raises(CheckpointError, match=r"misshaped.*blocks\.0\.ffn\.2\.bias"):
        load_anytalker_dit(bad, cfg)
    with pytest.raises(CheckpointError, match="disagree.*dim"):
        load_anytalker_dit(sd, cfg.replace(dim=128, num_heads=2))
    with pytest.raises(CheckpointError, match="not an AnyTalker DiT"):
        detect_variant({"patch_embedding.weight": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="non-tensor"):
        load_anytalker_dit(dict(sd, note="hello"), cfg)


class _Evil:
    def __reduce__(self):
        return (print, ("arbitrary code ran",))


def test_checkpoint_refuses_arbitrary_pickles(tmp_path):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as fh:
        pickle.dump({"model": _Evil()}, fh, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        read_state_dict(path)  # torch.load(weights_only=True) refuses to call arbitrary code
