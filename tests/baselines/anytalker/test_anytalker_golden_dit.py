"""Whole AnyTalker DiTs (both variants) against the golden vectors of the official code.

The model is built from the golden ``*.config.json`` (plus its test-only widths), checked against
the sizes inferred from the weights, loaded strictly through the checkpoint loader, and run on
every identity count and on the cond / uncond / CFG cases found in the file. Tolerance (golden
README): whole-DiT outputs 1e-4, fp32 on CPU.
"""

from __future__ import annotations

import re

import pytest
import torch

from interactive_eyes.baselines.anytalker.checkpoint import infer_config, load_anytalker_dit

DITS = ("dit_af_tiny", "dit_legacy_tiny")


def _inputs(g: dict, n: int, cond: bool, seq_len: int) -> dict:
    audio = [g[f"in.audio.{i}"] for i in range(n)]
    return dict(
        x=[g["in.x"]],
        t=g["in.t"],
        context=[g["in.context" if cond else "in.context_null"]],
        clip_fea=g["in.clip_fea"],
        y=[g["in.y"]],
        # §10.2: the unconditional pass zeros the audio *features*; faces, masks, clip, y unchanged
        audio=audio if cond else [torch.zeros_like(a) for a in audio],
        ref_faces=[g[f"in.ref_face.{i}"] for i in range(n)],
        face_masks=[g[f"in.face_mask.{i}"] for i in range(n)],
        seq_len=seq_len,
    )


@pytest.fixture(scope="module", params=DITS)
def dit(request, gk):
    name = request.param
    g = gk.load(name)
    cfg, data = gk.dit_config(name)
    weights = gk.weights_of(g)
    # the sizes the weights determine agree with the JSON (+ test-only widths)
    assert infer_config(weights, cfg) == cfg
    model = load_anytalker_dit(weights, cfg, dtype=torch.float32)  # strict load, raises on any key mismatch
    assert set(model.state_dict()) == set(weights)
    return name, g, data, model


def test_dit_cases(dit, gk):
    name, g, data, model = dit
    meta = data.get("_inputs", {})
    seq_len = meta.get("seq_len")
    found = gk.cases(g, r"out\.n(\d+)\.(\w+)")
    assert found
    assert {int(m.group(1)) for m in found} >= set(meta.get("identities", []))
    modes = ("auto", "masked") if not model.config.is_legacy else ("auto",)
    worst = 0.0
    for mode in modes:
        model.afca_mode = mode
        outs: dict = {}
        for n in sorted({int(m.group(1)) for m in found}):
            for kind in ("cond", "uncond"):
                with torch.no_grad():
                    outs[n, kind] = model(**_inputs(g, n, kind == "cond", seq_len))[0]
        for m in found:
            n, kind = int(m.group(1)), m.group(2)
            if kind in ("cond", "uncond"):
                out = outs[n, kind]
            else:
                scale = re.fullmatch(r"cfg(\d+)p(\d+)", kind)
                assert scale, f"unknown output kind {kind}"
                g_scale = float(f"{scale.group(1)}.{scale.group(2)}")
                out = outs[n, "uncond"] + g_scale * (outs[n, "cond"] - outs[n, "uncond"])
            err = gk.max_err(out, g[m.group(0)])
            print(f"{name} [{mode}] {m.group(0)}: max|err| = {err:.2e} (|ref| <= {g[m.group(0)].abs().max():.2f})")
            assert out.shape == g[m.group(0)].shape
            assert err <= gk.dit_atol, (mode, m.group(0), err)
            worst = max(worst, err)
    model.afca_mode = "auto"
    print(f"{name}: worst {worst:.2e}")


def test_dit_intermediates(dit, gk):
    """The ``dbg.n<k>.*`` intermediates of the documented cond pass, to localise a mismatch."""
    name, g, data, model = dit
    meta = data.get("_inputs", {})
    by_case: dict[int, list[str]] = {}
    for m in gk.cases(g, r"dbg\.n(\d+)\.(.+)"):
        by_case.setdefault(int(m.group(1)), []).append(m.group(2))
    if not by_case:
        pytest.skip("no intermediates in this golden folder")
    for n, names in by_case.items():
        found: dict = {}
        with torch.no_grad():
            model(**_inputs(g, n, True, meta.get("seq_len")), intermediates=found)
        missing = [k for k in names if k not in found]
        assert not missing, f"intermediates not produced: {missing}"
        for k in names:
            err = gk.max_err(found[k], g[f"dbg.n{n}.{k}"])
            assert found[k].shape == g[f"dbg.n{n}.{k}"].shape, k
            assert err <= gk.dit_atol, (k, err)
        print(f"{name} dbg.n{n}: {len(names)} intermediates within {gk.dit_atol:g}")
