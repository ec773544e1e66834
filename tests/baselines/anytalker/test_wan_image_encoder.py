"""CLIP image encoder (``baselines/anytalker/image_encoder.py``) against the official code's golden vectors.

Golden folder: ``$IE_BENCH_TEST_DATA/../golden/wan-encoders`` (README there: ViT of the real structure,
width 32, 4 heads, 3 blocks, 56 px input; whole image and a face-like crop; output after all blocks
but the last; tolerances 1e-4 for outputs, 1e-5 for preprocessing and single layers).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("transformers")

from interactive_eyes.baselines.anytalker.checkpoint import CheckpointError  # noqa: E402
from interactive_eyes.baselines.anytalker.image_encoder import (  # noqa: E402
    CLIP_MEAN, CLIP_STD, VIT_H14_CONFIG, clip_hf_config, convert_clip_state_dict, infer_clip_config, load_wan_clip)
from wan_golden import err  # noqa: E402  (the shared helper module of this folder)
import wan_golden  # noqa: E402

WHOLE_ATOL = 1e-4
PRE_ATOL = 1e-5


def golden_dir() -> Path:
    return wan_golden.golden_dir("clip_tiny.safetensors")


@pytest.fixture(scope="module")
def golden():
    from safetensors.torch import load_file

    return load_file(str(golden_dir() / "clip_tiny.safetensors"))


def weights(golden) -> dict:
    return {k[len("weights."):]: v for k, v in golden.items() if k.startswith("weights.")}


@pytest.fixture(scope="module")
def official_pth(golden, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth"
    torch.save(weights(golden), path)
    return path


@pytest.fixture(scope="module")
def clip(official_pth):
    return load_wan_clip(official_pth, config=golden_dir() / "clip_tiny.config.json")


def test_real_size_architecture():
    from transformers import CLIPVisionModelWithProjection

    with torch.device("meta"):
        model = CLIPVisionModelWithProjection(clip_hf_config(VIT_H14_CONFIG))
    # spec §4.3: visual.* holds 392 tensors, 632,076,800 parameters (head included)
    assert sum(p.numel() for p in model.parameters()) == 632_076_800
    assert len(model.state_dict()) == 392 + 4 * 32  # to_qkv weight and bias each split in three per block


def test_inferred_config_and_conversion(golden):
    sd = weights(golden)
    cfg = json.loads((golden_dir() / "clip_tiny.config.json").read_text())
    got = infer_clip_config(sd)
    for key in ("image_size", "patch_size", "vision_dim", "vision_layers", "vision_mlp_ratio", "embed_dim"):
        assert got[key] == cfg[key], key
    conv = convert_clip_state_dict(sd)
    assert not any(k.startswith("textual.") or k == "log_scale" for k in conv)
    qkv = sd["visual.transformer.1.attn.to_qkv.weight"]
    w = 32
    for i, name in enumerate("qkv"):  # rows [queries | keys | values]
        assert torch.equal(conv[f"vision_model.encoder.layers.1.self_attn.{name}_proj.weight"], qkv[i * w:(i + 1) * w])
    assert torch.equal(conv["visual_projection.weight"], sd["visual.head"].t())


def test_constants(golden):
    assert err(torch.tensor(CLIP_MEAN), golden["const.mean"]) == 0
    assert err(torch.tensor(CLIP_STD), golden["const.std"]) == 0


@pytest.mark.parametrize("case", ["global", "face"])
def test_preprocessing_and_output_match_golden(golden, clip, case):
    image = golden[f"in.{case}"][:, 0][None]  # the pipeline passes [3, 1, H, W]: frame axis dropped
    pixels = clip.preprocess(image)
    assert err(pixels, golden[f"dbg.{case}.normalized"]) <= PRE_ATOL
    out = clip(image)
    assert out.shape == golden[f"out.{case}"].shape
    assert err(out, golden[f"out.{case}"]) <= WHOLE_ATOL


def test_resize_keeps_the_bicubic_overshoot(golden, clip):
    """No clamp after the resize (§4.1): the face crop's resize exceeds 1, as in the golden."""
    face = golden["in.face"][:, 0][None]
    resized = torch.nn.functional.interpolate(face, size=(56, 56), mode="bicubic", align_corners=False)
    assert err(resized, golden["dbg.face.resized"]) <= PRE_ATOL and float(resized.max()) > 1.0
    expected = ((resized * 0.5 + 0.5) - golden["const.mean"].view(1, 3, 1, 1)) / golden["const.std"].view(1, 3, 1, 1)
    assert err(clip.preprocess(face), expected) <= PRE_ATOL


def test_penultimate_hidden_states_of_the_full_model(golden, official_pth):
    """The truncated model's output == hidden_states[-2] of the full 3-block model; hidden_states[0]
    is the pre_norm output and [-1] all blocks (golden dbg tensors)."""
    from transformers import CLIPVisionModelWithProjection

    cfg = dict(infer_clip_config(weights(golden)), vision_heads=4)
    full = CLIPVisionModelWithProjection(clip_hf_config(cfg))
    full.load_state_dict(convert_clip_state_dict(weights(golden)), strict=True)
    pixels = golden["dbg.global.normalized"]
    with torch.no_grad():
        hs = full.eval().vision_model(pixel_values=pixels, output_hidden_states=True).hidden_states
    assert len(hs) == 4
    assert err(hs[0], golden["dbg.global.pre_norm"]) <= PRE_ATOL
    assert err(hs[-1], golden["dbg.global.all_blocks"]) <= WHOLE_ATOL
    assert err(hs[-2], golden["out.global"]) <= WHOLE_ATOL
    assert float((golden["dbg.global.all_blocks"] - golden["out.global"]).abs().max()) > 0.1  # cases differ


def test_list_of_crops_equals_one_call_per_crop(golden, clip):
    a, b = golden["in.global"][:, 0], golden["in.face"][:, 0]
    both = clip([a, b])
    assert both.shape == (2, 17, 32)
    assert err(both[1:], clip(b[None])) <= 1e-5
    assert err(both[:1], golden["out.global"]) <= WHOLE_ATOL


def test_tiny_official_file_loads_without_config(golden, tmp_path):
    from tiny_encoders import write_tiny_wan_encoders

    files = write_tiny_wan_encoders(tmp_path)
    stored = torch.load(files["clip"], weights_only=True)
    assert set(stored) == set(weights(golden))  # official keys (visual, 1-block text tower, log_scale)
    enc = load_wan_clip(files["clip"])  # heads from the real head width 80
    assert enc.model.config.num_attention_heads == 2 and enc.image_size == 224
    assert len(enc.model.vision_model.encoder.layers) == 2  # 3 stored, the last never run
    out = enc(torch.rand(2, 3, 40, 72) * 2 - 1)
    assert out.shape == (2, files["sizes"]["clip_tokens"], files["sizes"]["clip_dim"])


def test_errors_name_the_file_and_keys(official_pth, tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_wan_clip(tmp_path / "nope.pth")
    sd = torch.load(official_pth, weights_only=True)
    del sd["visual.transformer.0.attn.proj.bias"]
    bad = tmp_path / "bad.pth"
    torch.save(sd, bad)
    with pytest.raises(CheckpointError) as info:
        load_wan_clip(bad, config={"vision_heads": 4})
    assert "\n" not in str(info.value) and "bad.pth" in str(info.value)
    assert "vision_model.encoder.layers.0.self_attn.out_proj.bias" in str(info.value)
    with pytest.raises(ValueError, match="images must be"):
        load_wan_clip(official_pth, config={"vision_heads": 4})(torch.zeros(1, 1, 8, 8))
