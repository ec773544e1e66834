"""faces.crop.warp_roi: the exact bilinear ROI crop, against scipy, against the implementation it
replaced (copied below as the reference), and sub-pixel moves."""

from __future__ import annotations

import math

import numpy as np
import pytest

from interactive_eyes.faces import crop, mediapipe_tasks as mt
from interactive_eyes.faces.mediapipe_mesh import Roi


def old_warp_roi(rgb: np.ndarray, roi: Roi, size: int, border: str = "replicate") -> np.ndarray:
    """The previous ``mediapipe_tasks.warp_roi`` (this repo's code before faces.crop), verbatim
    but for the docstring: float64 positions, nearest-neighbour remaps of a float32 patch, blend
    in float32."""
    import cv2

    if border not in ("replicate", "zero"):
        raise ValueError(f"border must be 'replicate' or 'zero', got {border!r}")
    src = np.ascontiguousarray(rgb)
    pad = 1 if border == "zero" else 0
    if pad:
        src = cv2.copyMakeBorder(src, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    h, w = src.shape[:2]
    if h < 2 or w < 2:
        raise ValueError(f"image too small to resample: {rgb.shape}")
    m = mt.roi_matrix(roi, size)
    u = np.arange(size, dtype=np.float64) + 0.5
    x = m[0, 0] * u[None, :] + m[0, 1] * u[:, None] + (m[0, 2] - 0.5 + pad)
    y = m[1, 0] * u[None, :] + m[1, 1] * u[:, None] + (m[1, 2] - 0.5 + pad)
    x = np.minimum(np.maximum(x, 0.0), w - 1.0)
    y = np.minimum(np.maximum(y, 0.0), h - 1.0)
    x0 = np.minimum(np.floor(x), w - 2.0)
    y0 = np.minimum(np.floor(y), h - 2.0)
    fx = (x - x0).astype(np.float32)
    fy = (y - y0).astype(np.float32)
    c0, r0 = int(x0.min()), int(y0.min())
    patch = src[r0:int(y0.max()) + 2, c0:int(x0.max()) + 2].astype(np.float32)
    x0, y0 = (x0 - c0).astype(np.float32), (y0 - r0).astype(np.float32)
    g00, g01, g10, g11 = (cv2.remap(patch, x0 + dx, y0 + dy, cv2.INTER_NEAREST)
                          for dy in (0.0, 1.0) for dx in (0.0, 1.0))
    if src.ndim == 3:
        fx, fy = cv2.merge([fx] * src.shape[2]), cv2.merge([fy] * src.shape[2])
    top = g00 + fx * (g01 - g00)
    bottom = g10 + fx * (g11 - g10)
    return top + fy * (bottom - top)


def scipy_warp(img: np.ndarray, roi: Roi, size: int, border: str) -> np.ndarray:
    """map_coordinates order 1 in float64 at the convention's positions (pixel centres, minus 0.5)."""
    from scipy.ndimage import map_coordinates

    u = np.arange(size) + 0.5
    uu, vv = np.meshgrid(u, u)
    p = mt.to_frame(np.stack([uu.ravel(), vv.ravel()], axis=1), roi, size) - 0.5
    mode = "nearest" if border == "replicate" else "grid-constant"
    planes = img[:, :, None] if img.ndim == 2 else img
    out = np.stack([map_coordinates(planes[:, :, k].astype(np.float64), [p[:, 1], p[:, 0]], order=1, mode=mode,
                                    cval=0.0) for k in range(planes.shape[2])], axis=1)
    return out.reshape((size, size) + img.shape[2:])


def _image(seed: int, h: int = 180, w: int = 240, c: int | None = 3) -> np.ndarray:
    shape = (h, w) if c is None else (h, w, c)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


# (ROI, what it exercises) on a 180 x 240 image
ROIS = [
    (Roi(120.37, 90.81, 100.3, 100.3, 0.0), "inside, unrotated (separable path)"),
    (Roi(120.37, 90.81, 100.3, 100.3, 0.05), "inside, nearly unrotated (general path)"),
    (Roi(100.37, 20.81, 70.3, 70.3, 0.6), "past the top edge"),
    (Roi(230.2, 170.4, 90.0, 90.0, -0.6), "past the bottom right corner"),
    (Roi(20.5, 100.25, 60.0, 60.0, math.pi / 2), "quarter turn past the left edge"),
    (Roi(-300.0, 500.0, 50.0, 50.0, 0.3), "fully outside"),
    (Roi(-300.0, 90.0, 50.0, 50.0, 0.0), "fully outside, unrotated"),
    (Roi(77.77, 66.66, 0.7, 0.7, 0.4), "tiny: the whole crop inside one pixel pair"),
    (Roi(120.0, 90.0, 5000.0, 4000.0, -0.6), "huge: the image is a dot in the crop"),
    (Roi(120.0, 90.0, 5000.0, 5000.0, 0.0), "huge, unrotated"),
    (Roi(120.0, 90.0, 240.0, 240.0, 0.0), "letterbox (the detector's ROI)"),
    (Roi(239.5, 179.5, 1.0, 1.0, 0.0), "at the last pixel: the weight moves onto it"),
]


@pytest.mark.parametrize("size", [256, 128, 37])
@pytest.mark.parametrize("border", ["replicate", "zero"])
@pytest.mark.parametrize("case", range(len(ROIS)))
def test_exact_bilinear_and_equal_to_the_old_crop(case, border, size):
    roi, _ = ROIS[case]
    img = _image(case)
    out = crop.warp_roi(img, roi, size, border)
    assert out.shape == (size, size, 3) and out.dtype == np.float32
    # scipy in float64: only the float32 rounding of the weights and blend differs (< 1e-4 of a
    # grey level; 1e-3 leaves room and is still 30x below one 1/32 px step on a 255 edge)
    assert np.abs(out - scipy_warp(img, roi, size, border)).max() < 1e-3
    # the old implementation does the same float32 arithmetic on positions equal to ~1e-13 px
    assert np.abs(out - old_warp_roi(img, roi, size, border)).max() < 1e-4


@pytest.mark.parametrize("channels", [None, 1, 4, 5])
def test_other_channel_counts(channels):
    """2-D images and 1, 4, 5 channels (5: two RGBX groups) give the same as per-channel scipy."""
    img = _image(7, 60, 90, channels)
    for roi in (Roi(40.3, 30.2, 50.0, 50.0, 0.4), Roi(40.3, 30.2, 50.0, 50.0, 0.0)):
        out = crop.warp_roi(img, roi, 64, "zero")
        assert out.shape == (64, 64) + img.shape[2:]
        assert np.abs(out - scipy_warp(img, roi, 64, "zero")).max() < 1e-3
        # (the old crop dropped a single channel: OpenCV returns H x W for H x W x 1)
        old = old_warp_roi(img, roi, 64, "zero").reshape(out.shape)
        assert np.abs(out - old).max() < 1e-4


@pytest.mark.parametrize("rotation", [0.0, 0.05, 0.6])
def test_a_one_sixty_fourth_pixel_move_is_rendered(rotation):
    """A ROI moved by 1/64 px changes the crop by what the exact interpolation says it does.
    A warp that quantises positions to 1/32 px (OpenCV 4's INTER_LINEAR fixed-point tables; the
    float32 remap of OpenCV 5.1 is exact, but the package allows 4.8+) misses it by up to half a
    step's worth of the image gradient: scipy at positions rounded to 1/32 px is checked to fail."""
    from scipy.ndimage import map_coordinates

    img = _image(3)
    roi = Roi(120.37, 90.81, 100.3, 100.3, rotation)
    moved = Roi(roi.cx + 1 / 64, roi.cy - 1 / 64, roi.width, roi.height, rotation)
    change = crop.warp_roi(img, moved, 128) - crop.warp_roi(img, roi, 128)
    expected = scipy_warp(img, moved, 128, "replicate") - scipy_warp(img, roi, 128, "replicate")
    assert np.abs(change).max() > 1.0  # random pixels: a 1/64 px move shifts values by grey levels
    assert np.abs(change - expected).max() < 1e-3

    def quantised(r: Roi) -> np.ndarray:
        u = np.arange(128) + 0.5
        uu, vv = np.meshgrid(u, u)
        p = np.round((mt.to_frame(np.stack([uu.ravel(), vv.ravel()], axis=1), r, 128) - 0.5) * 32) / 32
        return np.stack([map_coordinates(img[:, :, k].astype(np.float64), [p[:, 1], p[:, 0]], order=1, mode="nearest")
                         for k in range(3)], axis=1).reshape(128, 128, 3)
    assert np.abs(quantised(moved) - quantised(roi) - expected).max() > 0.1


@pytest.mark.parametrize("border", ["replicate", "zero"])
def test_both_unrotated_paths(border):
    """The two separable paths (a block of sampled rows x columns, or lerps over the patch), which
    warp_roi picks between by size, each equal the old crop on ROIs inside, across and outside."""
    img = _image(9)
    for roi in (Roi(120.37, 90.81, 100.3, 80.3, 0.0), Roi(10.2, 170.9, 150.0, 150.0, 0.0),
                Roi(120.0, 90.0, 400.0, 400.0, 0.0), Roi(-90.0, 90.0, 60.0, 60.0, 0.0)):
        for size in (40, 128):
            m = mt.roi_matrix(roi, size)
            ref = old_warp_roi(img, roi, size, border)
            for path in (crop._separable, crop._separable_patch):
                got = path(img, m, size, 1 if border == "zero" else 0, np.empty((size, size, 3), np.float32))
                assert np.abs(got - ref).max() < 1e-4


def test_strided_views():
    """A channel-reversed (BGR -> RGB) view and a column-strided view crop as their copies do."""
    img = _image(5)
    for view in (img[:, :, ::-1], img[:, ::2]):
        for roi in (Roi(60.3, 50.2, 70.0, 70.0, 0.3), Roi(60.3, 50.2, 70.0, 70.0, 0.0)):
            np.testing.assert_array_equal(crop.warp_roi(view, roi, 64), crop.warp_roi(view.copy(), roi, 64))


def test_the_old_name_still_imports():
    assert mt.warp_roi is crop.warp_roi


def test_rejects_what_it_cannot_crop():
    img = _image(0, 10, 10)
    with pytest.raises(ValueError):
        crop.warp_roi(img, Roi(5, 5, 4, 4, 0.0), 8, "reflect")
    with pytest.raises(ValueError):
        crop.warp_roi(img[:1], Roi(5, 5, 4, 4, 0.1), 8)
    with pytest.raises(TypeError):
        crop.warp_roi(img.astype(np.float32), Roi(5, 5, 4, 4, 0.1), 8)


def test_buffers_are_not_shared_between_results():
    """The per-thread buffers are reused; the returned crops are not."""
    img = _image(1)
    a = crop.warp_roi(img, Roi(100.3, 80.2, 90.0, 90.0, 0.3), 64)
    keep = a.copy()
    crop.warp_roi(img, Roi(50.3, 40.2, 30.0, 30.0, -0.3), 64)
    np.testing.assert_array_equal(a, keep)


def test_threads_do_not_share_buffers():
    """Crops made in four threads at once equal the same crops made one by one."""
    import threading

    img = _image(2, 300, 400)
    rois = [Roi(150 + i * 3.3, 140 - i * 2.1, 120, 120, 0.1 * i) for i in range(6)]
    ref = [crop.warp_roi(img, r, 256) for r in rois]
    bad = []

    def run():
        for _ in range(5):
            bad.extend(i for i, r in enumerate(rois) if not np.array_equal(crop.warp_roi(img, r, 256), ref[i]))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not bad
