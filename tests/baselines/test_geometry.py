"""Reference -> output maps (analytic policies) and their check by ECC registration of frame 0."""

from __future__ import annotations

import numpy as np
import pytest

from interactive_eyes.baselines import geometry as g


@pytest.fixture(scope="module")
def ref():
    skdata = pytest.importorskip("skimage.data")
    from PIL import Image

    return np.asarray(Image.fromarray(skdata.astronaut()).resize((192, 128), Image.LANCZOS))


def test_analytic_maps():
    # 16:9 into MultiTalk's 2:1 bucket 896x448: scale 448/504... worked by hand on 1000x500 -> 800x600
    c = g.cover_crop((1000, 500), (800, 600))
    assert c.sx == c.sy == pytest.approx(1.2) and c.tx == pytest.approx(-200) and c.ty == 0
    assert c.crop == (pytest.approx(166.667, abs=1e-3), 0.0, pytest.approx(833.333, abs=1e-3), 500.0)
    r = g.resize((852, 480), (832, 448))
    assert (r.sx, r.sy, r.tx, r.ty) == (832 / 852, 448 / 480, 0.0, 0.0)
    b = g.box_crop((400, 300), (512, 512), (100, 50, 228, 178))
    assert b.apply(100, 50) == (0.0, 0.0) and b.apply(228, 178) == pytest.approx((512.0, 512.0))
    # OpenCV pixel-centre matrix: reference pixel centre (0.5, 0.5) -> output continuous 0.5*s
    m = r.matrix()
    assert m[0, 0] * 0 + m[0, 2] == pytest.approx(0.5 * r.sx - 0.5)


@pytest.mark.parametrize("policy", ["resize", "cover_crop", "box_crop"])
def test_registration_agrees_with_a_correct_map(ref, policy):
    import cv2

    out = (96, 48) if policy != "box_crop" else (64, 64)
    a = {"resize": lambda: g.resize((192, 128), out), "cover_crop": lambda: g.cover_crop((192, 128), out),
         "box_crop": lambda: g.box_crop((192, 128), out, (50, 20, 130, 100))}[policy]()
    if policy == "resize":  # what a method does: an area-averaging resize
        frame0 = cv2.resize(ref, out, interpolation=cv2.INTER_AREA)
    else:
        frame0 = cv2.warpAffine(ref, a.matrix(), out, flags=cv2.INTER_LINEAR)
    doc = g.checked(ref, frame0, a)
    assert doc["use"] == "analytic" and doc["disagreement_px"] < 0.5 and doc["analytic_residual"] < 10, doc


def test_registration_catches_a_wrong_map(ref):
    """The method really shifted the image by 3 px right and 2 px down: the analytic map is off and
    the registered one finds the shift (and is the one to use)."""
    import cv2

    true = g.Geometry("resize", 0.75, 0.75, 3.0, 2.0, (192, 128), (144, 96))
    frame0 = cv2.warpAffine(ref, true.matrix(), (144, 96), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)
    doc = g.checked(ref, frame0, g.resize((192, 128), (144, 96)))
    reg = doc["registered"]
    assert doc["use"] == "registered" and doc["disagreement_px"] > 2
    assert reg["tx"] == pytest.approx(3.0, abs=0.3) and reg["ty"] == pytest.approx(2.0, abs=0.3)
    assert reg["sx"] == pytest.approx(0.75, abs=0.01) and doc["registered_residual"] < doc["analytic_residual"]
