"""Wan2.1 VAE (``baselines/anytalker/vae.py``) against the official code's golden vectors.

Golden folder: ``$IE_BENCH_TEST_DATA/../golden/wan-encoders`` (README there: tiny VAE of the real
architecture with base width 8, official key names, float32 CPU; tolerances 1e-4 for whole-model
outputs, 1e-5 for preprocessing). The golden weights are written back to an official-format ``.pth``
in tmp_path and loaded through the real loader.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")

from interactive_eyes.baselines.anytalker.checkpoint import CheckpointError  # noqa: E402
from interactive_eyes.baselines.anytalker.vae import (  # noqa: E402
    LATENTS_MEAN, LATENTS_STD, WAN_VAE_CONFIG, build_vae_model, conditioning_clip, convert_wan_vae_state_dict,
    infer_vae_config, load_wan_vae)
from wan_golden import err  # noqa: E402  (the shared helper module of this folder)
import wan_golden  # noqa: E402

WHOLE_ATOL = 1e-4  # README: whole-model outputs
PRE_ATOL = 1e-5  # README: preprocessing tensors


def golden_dir() -> Path:
    return wan_golden.golden_dir("vae_tiny.safetensors")


@pytest.fixture(scope="module")
def golden():
    from safetensors.torch import load_file

    d = golden_dir()
    return load_file(str(d / "vae_tiny.safetensors")), d / "vae_tiny.config.json"


@pytest.fixture(scope="module")
def official_pth(golden, tmp_path_factory) -> Path:
    tensors, _ = golden
    path = tmp_path_factory.mktemp("vae") / "Wan2.1_VAE.pth"
    torch.save({k[len("weights."):]: v for k, v in tensors.items() if k.startswith("weights.")}, path)
    return path


@pytest.fixture(scope="module")
def vae(golden, official_pth):
    _, config = golden
    return load_wan_vae(official_pth, config=config)


def test_key_layout_is_the_real_files(golden):
    tensors, _ = golden
    sd = {k[len("weights."):]: v for k, v in tensors.items() if k.startswith("weights.")}
    assert len(sd) == 194  # README: the same key set as Wan2.1_VAE.pth
    with torch.device("meta"):
        real = build_vae_model(WAN_VAE_CONFIG)
    # spec §2.5: 194 tensors, 126,892,531 parameters for the real configuration
    assert len(real.state_dict()) == 194
    assert sum(p.numel() for p in real.parameters()) == 126_892_531
    converted = convert_wan_vae_state_dict(sd)
    assert set(converted) == set(build_vae_model(infer_vae_config(sd)).state_dict())
    assert all(converted[k] is v for k, v in zip(converted, sd.values()))  # renaming only, same tensors


def test_config_inferred_from_shapes_equals_the_golden_config(golden):
    tensors, config = golden
    sd = {k[len("weights."):]: v for k, v in tensors.items() if k.startswith("weights.")}
    want = {k: v for k, v in json.loads(config.read_text()).items() if not k.startswith("_")}
    assert infer_vae_config(sd) == want


def test_constants(golden, vae):
    tensors, _ = golden
    assert err(torch.tensor(LATENTS_MEAN), tensors["const.latents_mean"]) == 0
    assert err(torch.tensor(LATENTS_STD), tensors["const.latents_std"]) == 0
    assert (vae.z_dim, vae.temporal_stride, vae.spatial_stride) == (16, 4, 8)


def test_encode_matches_golden(golden, vae):
    tensors, _ = golden
    for case, name in (("video", "in.video"), ("cond", "in.cond_clip")):
        x = tensors[name][None]
        mu = vae.model.encode(x).latent_dist.mode()
        assert err(mu, tensors[f"dbg.encode.{case}.mu_raw"]) <= WHOLE_ATOL
        z = vae.encode(x)
        assert z.dtype == torch.float32
        assert err(z[0], tensors[f"out.encode.{case}"]) <= WHOLE_ATOL


def test_decode_matches_golden(golden, vae):
    tensors, _ = golden
    out = vae.decode(tensors["in.latent"][None])
    assert err(out[0], tensors["out.decode.latent"]) <= WHOLE_ATOL
    assert float(out.abs().max()) <= 1.0  # clamped; the golden unclamped decode reaches 2.2
    assert float(tensors["dbg.decode.latent.unclamped"].abs().max()) > 1.5


@pytest.fixture(scope="module")
def long_latent(vae):
    """A longer latent than the golden one (5 frames -> 17 video frames) and diffusers' decode of the
    whole clip in one call (its own per-frame causal loop)."""
    z = torch.randn(1, 16, 5, 4, 6, generator=torch.Generator().manual_seed(3))
    mean = torch.tensor(LATENTS_MEAN).view(1, -1, 1, 1, 1)
    with torch.no_grad():
        whole = vae.model.decode(z / (1 / torch.tensor(LATENTS_STD)).view(1, -1, 1, 1, 1) + mean).sample
    return z, whole


@pytest.mark.parametrize("chunk", [1, 2, 8])
def test_chunked_decode_equals_whole_clip_decode(long_latent, vae, chunk):
    """Chunks of latent frames with the cache carried across == the whole-clip decode."""
    z, whole = long_latent
    chunked = vae.decode(z, chunk=chunk, output_device="cpu")
    assert chunked.shape == (1, 3, 17, 32, 48)
    assert err(chunked, whole) <= 1e-5


def test_conditioning_clip_from_the_image(golden):
    tensors, _ = golden
    img = torch.from_numpy(np.ascontiguousarray(tensors["in.image_u8"].numpy())).permute(2, 0, 1).float() / 255
    pm1 = (img - 0.5) / 0.5  # to_tensor, then Normalize(0.5, 0.5)
    assert err(pm1, tensors["dbg.image_pm1"]) <= PRE_ATOL
    clip = conditioning_clip(pm1, 32, 48, 9)
    assert err(clip[:, :1], tensors["dbg.cond.resized"]) <= PRE_ATOL
    assert err(clip, tensors["in.cond_clip"]) <= PRE_ATOL
    assert float(clip[:, 1:].abs().max()) == 0


def test_batch_of_two(golden, vae):
    """Two clips at once; the second decode is the golden round trip (decode of the encoded video)."""
    tensors, _ = golden
    z = vae.encode(torch.stack([tensors["in.video"], tensors["in.cond_clip"]]))
    assert err(z[0], tensors["out.encode.video"]) <= WHOLE_ATOL
    assert err(z[1], tensors["out.encode.cond"]) <= WHOLE_ATOL
    out = vae.decode(torch.stack([tensors["in.latent"], tensors["out.encode.video"]]))
    assert err(out[0], tensors["out.decode.latent"]) <= WHOLE_ATOL
    assert err(out[1], tensors["out.decode.roundtrip"]) <= WHOLE_ATOL


def test_safetensors_and_inferred_config(golden, tmp_path):
    from safetensors.torch import save_file

    tensors, _ = golden
    path = tmp_path / "vae.safetensors"
    save_file({k[len("weights."):]: v for k, v in tensors.items() if k.startswith("weights.")}, str(path))
    vae = load_wan_vae(path)  # no config: every size from the shapes
    assert err(vae.encode(tensors["in.video"][None])[0], tensors["out.encode.video"]) <= WHOLE_ATOL


def test_errors_name_the_file_and_keys(official_pth, tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_wan_vae(tmp_path / "nope.pth")
    sd = torch.load(official_pth, weights_only=True)
    del sd["decoder.middle.1.proj.bias"]
    sd["encoder.extra.weight"] = torch.zeros(1)
    bad = tmp_path / "bad.pth"
    torch.save(sd, bad)
    with pytest.raises(CheckpointError) as info:
        load_wan_vae(bad)
    msg = str(info.value)
    assert "\n" not in msg and "bad.pth" in msg
    assert "decoder.mid_block.attentions.0.proj.bias" in msg and "encoder.extra.weight" in msg
    other = tmp_path / "t5.pth"
    torch.save({"token_embedding.weight": torch.zeros(4, 2)}, other)
    with pytest.raises(CheckpointError, match="t5.pth: not a Wan2.1 VAE"):
        load_wan_vae(other)
    with pytest.raises(CheckpointError, match="Wan2.1_VAE.pth.*misshaped"):  # config disagreeing with the file
        load_wan_vae(official_pth, config={"z_dim": 8})
    listed = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], listed)
    with pytest.raises(CheckpointError, match="list.pth: expected a flat dict"):
        load_wan_vae(listed)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="garbage.pth: cannot read"):
        load_wan_vae(garbage)


def test_bad_inputs(vae):
    with pytest.raises(ValueError, match="1\\+4k"):
        vae.encode(torch.zeros(1, 3, 4, 16, 16))
    with pytest.raises(ValueError, match="latents"):
        vae.decode(torch.zeros(1, 8, 2, 2, 2))


def test_tiny_official_files_load_without_config(golden, tmp_path):
    from tiny_encoders import write_tiny_wan_encoders

    files = write_tiny_wan_encoders(tmp_path)
    tensors, _ = golden
    stored = torch.load(files["vae"], weights_only=True)
    # the helper writes the official layout: the golden (official) keys and shapes at base width 8
    assert {k: v.shape for k, v in stored.items()} == {
        k[len("weights."):]: v.shape for k, v in tensors.items() if k.startswith("weights.")}
    vae = load_wan_vae(files["vae"])
    z = vae.encode(torch.zeros(1, 3, 5, 16, 24))
    assert z.shape == (1, 16, 2, 2, 3)
    assert vae.decode(z).shape == (1, 3, 5, 16, 24)
