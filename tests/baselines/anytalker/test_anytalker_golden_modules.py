"""AnyTalker modules against the golden vectors of the official code (fp32, CPU).

Cases and sizes come from the golden folder (``tiny_configs.json`` and tensor names), never from
constants here. Tolerances (golden README): modules 1e-5, integer / mask / box tensors exact.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from interactive_eyes.baselines.anytalker.audio import (
    AudioProjection,
    LegacyAudioProjection,
    normalize_waveform,
    wav2vec_features,
)
from interactive_eyes.baselines.anytalker.layers import (
    apply_rope,
    build_rope,
    rope_angles_table,
    rope_cache_from_angles,
    sinusoidal_embedding,
)
from interactive_eyes.baselines.anytalker.masks import build_face_masks
from interactive_eyes.baselines.anytalker.model import (
    AudioFaceCrossAttention,
    LegacyAudioCrossAttention,
    TemporalLayout,
    build_temporal_mask,
    temporal_mask_frames,
)
from interactive_eyes.baselines.anytalker.scheduler import make_unipc_scheduler, official_flow_schedule


def _ids(g: dict, prefix: str, n: int) -> list[torch.Tensor]:
    return [g[f"{prefix}.{i}"] for i in range(n)]


# --------------------------------------------------------------------------- AFCA
def test_afca(gk):
    cfg, g = gk.config("afca"), gk.load("afca")
    layer = AudioFaceCrossAttention(cfg["dim"], cfg["num_heads"], cfg["eps"]).eval()
    layer.load_state_dict(gk.weights_of(g), strict=True)
    f, h, w = cfg["grid"]
    mask = g["temporal_mask"].bool()
    audio_frames, audio_tok = g["audio_ctx.0"].shape[1:3]
    # the mask is rebuilt exactly from the grid and the audio shape (§5.8)
    assert torch.equal(temporal_mask_frames(f, audio_frames), g["temporal_mask_frames"].bool())
    assert torch.equal(build_temporal_mask(f, h * w, audio_frames, audio_tok), mask)

    found = gk.cases(g, r"out\.n(\d+)(_no_temporal_mask|_no_token_mask)?")
    assert found, "no AFCA cases"
    assert {int(m.group(1)) for m in found} >= set(cfg["identities"])
    worst = 0.0
    for m in found:
        case, n, kind = m.group(0)[4:], int(m.group(1)), m.group(2)
        args = (g["x"], g["ctx_text"], g["ctx_clip"], _ids(g, "audio_ctx", n), _ids(g, "face_ctx", n),
                _ids(g, "face_token_mask", n))
        if kind == "_no_temporal_mask":
            temporals = {"none": None}
        else:  # explicit mask, and the layout in both execution modes
            temporals = {"mask": mask,
                         "grouped": TemporalLayout(f, h * w, audio_frames, audio_tok, mode="grouped"),
                         "masked": TemporalLayout(f, h * w, audio_frames, audio_tok, mode="masked")}
        for label, temporal in temporals.items():
            branches: dict = {}
            with torch.no_grad():
                out = layer(*args, temporal=temporal, use_token_mask=kind != "_no_token_mask", branches=branches)
            err = gk.max_err(out, g[m.group(0)])
            for name, value in branches.items():
                ref = g.get(f"dbg.{case}.{name}")
                if ref is not None:
                    err = max(err, gk.max_err(value, ref))
            print(f"afca {case} [{label}]: max|err| = {err:.2e}")
            assert err <= gk.module_atol, (case, label, err)
            worst = max(worst, err)
    print(f"afca worst {worst:.2e}")


def test_legacy_afca(gk):
    cfg, g = gk.config("legacy_afca"), gk.load("legacy_afca")
    assert cfg["qk_norm"] is False  # the legacy audio sub-layer has no q/k norms (§4.2)
    layer = LegacyAudioCrossAttention(cfg["dim"], cfg["num_heads"], cfg["encoder_hidden_states_dim"]).eval()
    layer.load_state_dict(gk.weights_of(g), strict=True)
    found = gk.cases(g, r"out\.n(\d+)")
    assert {int(m.group(1)) for m in found} >= set(cfg["identities"])
    for m in found:
        n = int(m.group(1))
        with torch.no_grad():
            out = layer(g["x"], _ids(g, "audio_ctx", n), _ids(g, "face_ctx", n), _ids(g, "face_token_mask", n),
                        cfg["latent_frames"])
        err = gk.max_err(out, g[m.group(0)])
        print(f"legacy_afca n{n}: max|err| = {err:.2e}")
        assert err <= gk.module_atol


# --------------------------------------------------------------------------- audio projections
def test_audio_proj(gk):
    cfg, g = gk.config("audio_proj"), gk.load("audio_proj")
    proj = AudioProjection(cfg["seq_len"], cfg["blocks"], cfg["channels"], cfg["intermediate_dim"],
                           cfg["output_dim"], cfg["context_tokens"]).eval()
    proj.load_state_dict(gk.weights_of(g), strict=True)
    found = gk.cases(g, r"in_(\w+)")
    assert found
    for m in found:
        with torch.no_grad():
            out = proj(g[m.group(0)])
        err = gk.max_err(out, g[f"out_{m.group(1)}"])
        print(f"audio_proj {m.group(1)}: max|err| = {err:.2e}")
        assert out.shape == g[f"out_{m.group(1)}"].shape and err <= gk.module_atol


def test_legacy_audio_proj(gk):
    cfg, g = gk.config("legacy_audio_proj"), gk.load("legacy_audio_proj")
    proj = LegacyAudioProjection(cfg["seq_len"], cfg["seq_len_vf"], cfg["blocks"], cfg["channels"],
                                 cfg["intermediate_dim"], cfg["output_dim"], cfg["context_tokens"],
                                 cfg["norm_output_audio"]).eval()
    proj.load_state_dict(gk.weights_of(g), strict=True)
    with torch.no_grad():
        out = proj(g["in_first"], g["in_latter"])
    err = gk.max_err(out, g["out"])
    print(f"legacy_audio_proj: max|err| = {err:.2e}")
    assert out.shape == g["out"].shape and err <= gk.module_atol


# --------------------------------------------------------------------------- RoPE and sinusoid
def test_rope_time(gk):
    cfg, g = gk.config("rope_time"), gk.load("rope_time")
    tables = gk.cases(g, r"freqs_hd(\d+)_first(\d+)\.real")
    assert tables
    for m in tables:
        head_dim, positions = int(m.group(1)), int(m.group(2))
        rope = rope_cache_from_angles(rope_angles_table(head_dim, positions))
        stem = m.group(0)[: -len(".real")]
        err = max(gk.max_err(rope.cos, g[f"{stem}.real"]), gk.max_err(rope.sin, g[f"{stem}.imag"]))
        print(f"rope table d={head_dim}: max|err| = {err:.2e}")
        assert err <= gk.module_atol
    grid = tuple(int(v) for v in g["rope.grid"][0])
    assert list(grid) == cfg["rope_grid"]
    x = g["rope.in"]
    out = apply_rope(x, build_rope(grid, x.shape[-1]))
    err = gk.max_err(out, g["rope.out"])
    print(f"rope rotation: max|err| = {err:.2e}")
    assert err <= gk.module_atol
    n = grid[0] * grid[1] * grid[2]
    assert torch.equal(out[:, n:], x[:, n:])  # padding tokens unchanged
    for m in gk.cases(g, r"sinusoid\.out_dim(\d+)"):
        assert g["sinusoid.t"].tolist() == cfg["sinusoid_t"]
        out = sinusoidal_embedding(g["sinusoid.t"], int(m.group(1)))
        err = gk.max_err(out, g[m.group(0)])
        print(f"sinusoid dim {m.group(1)}: max|err| = {err:.2e}")
        assert err <= gk.module_atol


# --------------------------------------------------------------------------- UniPC
def test_unipc_schedules(gk):
    cfg, g = gk.config("unipc"), gk.load("unipc")
    assert cfg["schedules"]
    for steps, shift in cfg["schedules"]:
        stem = f"steps{steps}_shift{shift:g}"
        sigmas, timesteps = official_flow_schedule(steps, shift, num_train_timesteps=cfg["num_train_timesteps"],
                                                   init_shift=cfg["scheduler_init_shift"])
        assert torch.equal(timesteps, g[f"{stem}.timesteps"]), stem
        err = gk.max_err(sigmas, g[f"{stem}.sigmas"])
        print(f"unipc {stem}: timesteps exact, sigmas max|err| = {err:.2e}")
        assert err <= gk.module_atol


def test_unipc_trajectory(gk):
    cfg, g = gk.config("unipc"), gk.load("unipc")
    traj = cfg["trajectory"]
    sched = make_unipc_scheduler(traj["steps"], traj["shift"], num_train_timesteps=cfg["num_train_timesteps"],
                                 init_shift=cfg["scheduler_init_shift"])
    x = g["traj.x_init"]
    worst = 0.0
    for k, t in enumerate(sched.timesteps):
        # the golden's synthetic model (README): 0.5 x + 0.25 sin(3x) + 1e-4 t
        model_out = 0.5 * x + 0.25 * torch.sin(3 * x) + 1e-4 * t.float()
        assert gk.max_err(model_out, g[f"traj.model_out.{k:02d}"]) <= gk.module_atol
        x = sched.step(model_out[None], t, x[None]).prev_sample[0]
        worst = max(worst, gk.max_err(x, g[f"traj.x_after.{k:02d}"]))
    print(f"unipc trajectory ({len(sched.timesteps)} steps): max|err| = {worst:.2e}")
    assert worst <= gk.module_atol


# --------------------------------------------------------------------------- face masks
def test_face_masks(gk):
    cfg, g = gk.config("face_masks"), gk.load("face_masks")
    image_hw = tuple(int(v) for v in g["in.image_hw"])
    lat_hw = tuple(int(v) for v in g["meta.lat_hw"])
    frames = int(g["meta.F"])
    assert list(image_hw) == cfg["image_hw"] and list(lat_hw) == cfg["lat_hw"] and frames == cfg["F"]
    for n in cfg["n_faces"]:
        fm = build_face_masks(g["in.raw_boxes_xyxy"].numpy(), n, image_hw, lat_hw, frames)
        p = f"n{n}."
        assert np.array_equal(fm.det_masks, g[p + "det_masks"].numpy()), n
        assert np.array_equal(fm.crop_boxes_xyxy, g[p + "crop_boxes_xyxy"].numpy()), n
        errs = {
            "bboxes_xywh": gk.max_err(torch.from_numpy(fm.bboxes_xywh.astype(np.float64)), g[p + "bboxes_xywh"]),
            "expanded_masks": gk.max_err(fm.expanded_masks, g[p + "expanded_masks"]),
            "global_mask_sum": gk.max_err(fm.global_mask, g[p + "global_mask_sum"]),
            "token_masks": gk.max_err(fm.token_masks, g[p + "token_masks"]),
            "face_mask_list": gk.max_err(fm.face_mask_list, g[p + "face_mask_list"]),
            "dit_mask": gk.max_err(fm.y_mask, g[p + "dit_mask"]),
        }
        print(f"face_masks n{n}: det masks and crop boxes exact, max|err| = {max(errs.values()):.2e}")
        for name, err in errs.items():
            assert err <= gk.module_atol, (n, name, err)


# --------------------------------------------------------------------------- wav2vec2
def test_wav2vec_tiny(gk):
    transformers = pytest.importorskip("transformers")
    cfg, g = gk.config("wav2vec_tiny"), gk.load("wav2vec_tiny")
    with open(gk.dir / "wav2vec_tiny.config.json", encoding="utf-8") as fh:
        model_cfg = json.load(fh)
    fe = model_cfg.pop("feature_extractor", {})
    model = transformers.Wav2Vec2Model(transformers.Wav2Vec2Config(**model_cfg)).eval()
    model.load_state_dict(gk.weights_of(g), strict=True)

    wave = g["in.waveform_16k"].numpy()
    assert len(wave) == cfg["num_samples"]
    norm = torch.from_numpy(normalize_waveform(wave))
    assert gk.max_err(norm, g["dbg.normalized_waveform"]) <= gk.module_atol
    common = dict(fps=cfg["fps"], sampling_rate=cfg["sampling_rate"], do_normalize=fe.get("do_normalize", True))

    emb, length = wav2vec_features(wave, model, num_frames=cfg["F_pad"], **common)
    stem = f"out.pad_F{cfg['F_pad']}"
    assert length == int(g[f"{stem}.audio_length"]) == cfg["audio_length_pad"]
    err_pad = max(gk.max_err(emb, g[f"{stem}.audio_emb"]),
                  gk.max_err(emb[: cfg["F_pad"]], g[f"{stem}.audio_emb_first_F"]))
    emb, length = wav2vec_features(wave, model, num_frames=None, **common)
    assert length == int(g["out.nopad.audio_length"]) == cfg["audio_length_nopad"]
    err_nopad = gk.max_err(emb, g["out.nopad.audio_emb"])
    print(f"wav2vec_tiny: pad max|err| = {err_pad:.2e}, nopad max|err| = {err_nopad:.2e}")
    assert err_pad <= gk.module_atol and err_nopad <= gk.module_atol
