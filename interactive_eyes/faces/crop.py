"""The ROI crop of the 'mediapipe-tasks' models: exact bilinear resampling of a rotated square.

Convention (the one ``mediapipe_tasks.roi_matrix`` defines): continuous pixel coordinates (pixel
i covers [i, i + 1), its centre is i + 0.5); tensor pixel (i, j) is sampled at the frame point
``roi_matrix(roi, size) @ (j + 0.5, i + 0.5, 1)``, i.e. at pixel-index position (that point
minus 0.5), by bilinear interpolation of the four neighbouring pixels. ``border`` 'replicate'
clamps the position into the image (the edge pixels continue: MediaPipe's landmark crop);
'zero' does the same on the image with one ring of zero pixels around it (black outside:
MediaPipe's detector letterbox).

Why exact: the tracker moves a ROI by fractions of a pixel (``faces.track``), and the mesh model
must see that move. Sample positions are float64 and the weights are their exact fractional
parts (rounded once to float32 for the blend: < 1e-4 of a grey level). OpenCV 4's bilinear warps
(``warpAffine``, ``remap`` INTER_LINEAR) quantise positions to 1/32 px, so a crop would move in
1/32 px steps (OpenCV 5.1's float32 remap has exact weights, but takes float32 positions, and
the package allows OpenCV 4.8+); here the pixels are fetched at integer positions (``np.take``)
and the weights applied afterwards.

Where the time goes (size 256, 3 channels, one core; ``benchmarks/crop_speed.py``): the float64
positions (a product, a floor, a difference per coordinate), the neighbour fetches, and the
float32 blend (three lerps, three operations each). The previous implementation made ~2400
page faults per call (fresh 0.8 MB temporaries, measured with getrusage); this one makes none:

* every intermediate lives in per-thread buffers reused across calls (``_Work``), and the crop
  is done in strips of rows (``_STRIP``);
* each pixel of the patch the ROI covers is packed as one uint32 (RGB + a pad byte), so one
  ``np.take`` of a (4, rows, size) index block fetches the four neighbours' channels at once;
* positions are clamped only where the ROI runs past the image (its extreme positions are
  known from the affine map), and the blend uses OpenCV's same-shape arithmetic (uint8 operands
  converted inside the first subtraction), in the old formula and order;
* an unrotated ROI (rotation exactly 0.0: the detector's letterbox, or any ROI a caller builds
  axis-aligned) is resampled separably: its samples' neighbours are the crossings of the sampled
  rows and columns (``_separable``: a (2 size)^2 block, for a ROI much larger than the crop;
  ``_separable_patch``: lerps over the patch's rows or columns otherwise). A ROI turned by 1e-9
  rad takes the general path: its rows do not sample one row of pixels.
"""

from __future__ import annotations

import math
import threading

import numpy as np

from interactive_eyes.faces.mediapipe_mesh import Roi

BORDERS = ("replicate", "zero")
# The ROI's extreme positions are computed from the affine map, not read off the positions;
# this margin (px) covers any difference in their last bit, so a clamp is never skipped wrongly.
_EDGE = 1e-6
_local = threading.local()


# Rows of the crop resampled together (a strip): each strip costs ~20 numpy/OpenCV calls of
# fixed overhead, and a larger strip's buffers overflow more of the caches (a core's L2 is 2 MB
# here; a 128-row strip at size 256 uses ~5 MB, ``_Work``). Measured, size 256, one core, ms per
# call: strips of 32 rows 1.41, 64 1.40, 96 1.42, 128 1.26, 256 (no strips) 1.33 (the previous
# version of this module, alongside: 1.36-1.41). The timings move +-10% with the machine's load.
_STRIP = 128


class _Work:
    """One thread's reusable buffers for one crop width (``size``), one strip of rows: float64
    positions and their floors, flat pixel indices, weights, the four neighbours (RGBX in one
    uint32 each) and the float32 lerps. ~5.1 MB at size 256, ~2.6 MB at 128; kept per thread and
    size for the thread's life."""

    def __init__(self, size: int):
        n, r = size, min(_STRIP, size)
        self.ones = np.ones(n)
        self.u = np.arange(n, dtype=np.float64) + 0.5  # tensor pixel centres
        self.pos = np.empty((2, r, n), np.float64)
        self.floor = np.empty((2, r, n), np.float64)
        self.fx = np.empty((2 * r, n), np.float32)  # x weights, twice: for the upper and lower row
        self.fy = np.empty((r, n), np.float32)
        self.corner = np.empty((r, n), np.int32)  # flat index of the top-left neighbour
        # flat buffers, shaped per strip so every stacked view is contiguous
        self.index = np.empty(4 * r * n, np.int32)
        self.g = np.empty(4 * r * n, np.uint32)  # the four neighbours, one RGBX word each
        self.g3 = np.empty(4 * r * n * 3, np.uint8)  # the same, RGB
        self.weights = np.empty(2 * r * n * 4, np.float32)
        self.lerp = np.empty(2 * r * n * 4, np.float32)


def _work(size: int) -> _Work:
    cache = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = {}
    w = cache.get(size)
    if w is None:
        w = cache[size] = _Work(size)
    return w


def _extent(a: np.ndarray, b: np.ndarray, limit: int) -> tuple[float, float, int, int]:
    """The extremes (lo, hi) of the positions ``a[None, :] + b[:, None]`` (fl(a_j + b_i) is
    monotone in a_j and b_i: they are at the extremes of a and b) and the range [lo_i, hi_i] that
    covers their clamped floors (capped at limit - 2), with a margin of _EDGE."""
    lo, hi = float(a.min()) + float(b.min()), float(a.max()) + float(b.max())
    lo_i = min(max(math.floor(lo - _EDGE), 0), limit - 2)
    hi_i = min(max(math.floor(hi + _EDGE), 0), limit - 2)
    return lo, hi, lo_i, hi_i


def _axis(a2: np.ndarray, a_lo: float, a_hi: float, b: np.ndarray, limit: int, pos: np.ndarray, fl: np.ndarray,
          frac: np.ndarray) -> None:
    """Pixel-index positions ``a[None, :] + b[:, None]`` (float64, (len(b), len(a)); ``a2`` is
    (ones, a), a_lo/a_hi a's extremes) clamped into [0, limit - 1]: their integer parts, capped at
    limit - 2 (where the weight moves fully onto the last pixel), into ``fl`` (float64) and their
    fractional parts into ``frac`` (float32)."""
    # one rounding of a_j + b_i, as np.add would do, by a (len(b), 2) @ (2, len(a)) product
    # (exact products by 1, one sum), three times faster than the broadcast add
    np.matmul(np.stack([b, a2[0, :len(b)]], axis=1), a2, out=pos)
    lo, hi = a_lo + float(b.min()), a_hi + float(b.max())
    top = limit - 1.0
    if lo < _EDGE:  # clamping the position into the image is exactly replicating its edge
        np.maximum(pos, 0.0, out=pos)
    if hi > top - _EDGE:
        np.minimum(pos, top, out=pos)
    np.floor(pos, out=fl)
    if hi + _EDGE >= top:
        np.minimum(fl, limit - 2, out=fl)
    np.subtract(pos, fl, out=pos)  # exact (Sterbenz: fl <= pos <= 2 fl, or fl = 0)
    np.copyto(frac, pos, casting="same_kind")  # the weight, rounded once to float32


def _region(src: np.ndarray, pad: int, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    """Rows [r0, r1) x columns [c0, c1) of ``src`` with ``pad`` rings of zeros around it (indices
    in the padded image), as a contiguous uint8 array."""
    if not pad:
        return src[r0:r1, c0:c1]
    h, w = src.shape[:2]
    sr0, sr1, sc0, sc1 = max(r0 - pad, 0), min(r1 - pad, h), max(c0 - pad, 0), min(c1 - pad, w)
    out = np.zeros((r1 - r0, c1 - c0) + src.shape[2:], src.dtype)
    out[sr0 + pad - r0:sr1 + pad - r0, sc0 + pad - c0:sc1 + pad - c0] = src[sr0:sr1, sc0:sc1]
    return out


def _lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``a + t * (b - a)`` in float32 into ``out`` (uint8 ``a``/``b`` are converted on the fly;
    ``t`` broadcasts): the old implementation's formula and order, so the same rounding."""
    np.subtract(b, a, out=out, dtype=np.float32)
    np.multiply(out, t, out=out)
    np.add(out, a, out=out, dtype=np.float32)
    return out


def _lerp_cv(a: np.ndarray, b: np.ndarray, t: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``_lerp`` on same-shape images with OpenCV's vectorised loops (2-3x numpy's with a cast)."""
    import cv2

    cv2.subtract(b, a, dst=out, dtype=cv2.CV_32F)
    cv2.multiply(out, t, dst=out)
    cv2.add(out, a, dst=out, dtype=cv2.CV_32F)
    return out


def _pack(patch: np.ndarray) -> np.ndarray:
    """(h, w, c <= 4) uint8 -> (h, w) uint32, one pixel (RGB + pad) per word: one gather fetches
    all its channels."""
    import cv2

    c = patch.shape[2]
    if patch.strides[1:] != (c, 1):  # e.g. a channel-reversed view: OpenCV needs whole pixels
        patch = np.ascontiguousarray(patch)
    if c == 3:
        # on the frame's view: OpenCV takes the row stride (a contiguous copy first cost 10x this)
        return cv2.cvtColor(patch, cv2.COLOR_RGB2RGBA).view(np.uint32)[:, :, 0]
    out = np.zeros(patch.shape[:2] + (4,), np.uint8)
    out[:, :, :c] = patch
    return out.view(np.uint32)[:, :, 0]


def _general(src, m, size: int, pad: int, w: _Work, out: np.ndarray) -> np.ndarray:
    import cv2

    h, wd = src.shape[0] + 2 * pad, src.shape[1] + 2 * pad  # the (virtually) padded image
    u, off = w.u, 0.5 - pad
    ax, bx = m[0, 0] * u, m[0, 1] * u + (m[0, 2] - off)  # x = ax[j] + bx[i] (pixel index)
    ay, by = m[1, 0] * u, m[1, 1] * u + (m[1, 2] - off)
    _, _, c0, c1 = _extent(ax, bx, wd)
    _, _, r0, r1 = _extent(ay, by, h)
    patch = _pack(_region(src, pad, r0, r1 + 2, c0, c1 + 2))  # every pixel the crop reads
    pw = patch.shape[1]
    flat = patch.ravel()
    # the neighbours in the order (0, 0), (1, 0) | (0, 1), (1, 1): the left pair and the right
    # pair are each one contiguous (2 rows, size) block, so one lerp along x does both rows
    shifts = np.array([0, pw, 1, pw + 1], np.int32)[:, None, None]
    ax2, ay2 = np.stack([w.ones, ax]), np.stack([w.ones, ay])
    ax_lo, ax_hi, ay_lo, ay_hi = float(ax.min()), float(ax.max()), float(ay.min()), float(ay.max())
    corner_offset = -float(r0 * pw + c0)
    c = out.shape[2]
    cw = 3 if c == 3 else 4  # channels of the float passes: RGB, or all four bytes of the word
    for i0 in range(0, size, _STRIP):
        i1 = min(i0 + _STRIP, size)
        r, rn = i1 - i0, (i1 - i0) * size
        fx, fy, corner = w.fx[:2 * r], w.fy[:r], w.corner[:r]
        _axis(ax2, ax_lo, ax_hi, bx[i0:i1], wd, w.pos[0, :r], w.floor[0, :r], fx[:r])
        _axis(ay2, ay_lo, ay_hi, by[i0:i1], h, w.pos[1, :r], w.floor[1, :r], fy)
        fx[r:] = fx[:r]
        # flat index of each sample's top-left neighbour in the patch, in one pass (float64
        # integers, exact; the conversion to int32 rounds an integer to itself)
        cv2.addWeighted(w.floor[1, :r], float(pw), w.floor[0, :r], 1.0, corner_offset, dst=corner, dtype=cv2.CV_32S)
        index = w.index[:4 * rn].reshape(4, r, size)
        np.add(corner, shifts, out=index)
        g = w.g[:4 * rn].reshape(4 * r, size)
        # in range by construction; 'wrap' (a no-op here) is the fastest mode with ``out`` (6% over
        # 'clip'; 'raise' copies through a buffer: 1.8x)
        np.take(flat, index.reshape(4 * r, size), out=g, mode="wrap")
        g = g.view(np.uint8).reshape(4 * r, size, 4)
        if cw == 3:  # drop the pad byte (a pass over bytes): the float passes are a quarter shorter
            g = cv2.cvtColor(g, cv2.COLOR_RGBA2RGB, dst=w.g3[:4 * rn * 3].reshape(4 * r, size, 3))
        weight = w.weights[:2 * rn * cw].reshape(2 * r, size, cw)
        lerp = w.lerp[:2 * rn * cw].reshape(2 * r, size, cw)
        cv2.merge([fx] * cw, dst=weight)  # same-shape arithmetic: OpenCV does not broadcast
        _lerp_cv(g[:2 * r], g[2 * r:], weight, lerp)  # along x, on the upper and the lower row
        top, bottom, weight = lerp[:r], lerp[r:], weight[:r]
        cv2.merge([fy] * cw, dst=weight)
        cv2.subtract(bottom, top, dst=bottom)
        cv2.multiply(bottom, weight, dst=bottom)
        if c == cw and out.flags.c_contiguous:  # (a channel group of a wider image is not)
            cv2.add(top, bottom, dst=out[i0:i1])
        else:
            cv2.add(top, bottom, dst=top)
            out[i0:i1] = top[:, :, :c]
    return out


def _axis_samples(a: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """One axis of an unrotated ROI: sample positions ``a`` (pixel-index units) -> (integer left
    neighbour per sample, its float32 fraction, first and last neighbour index the axis reads),
    clamped and weighted as the general path (``_extent``, ``_axis``)."""
    size = len(a)
    zero = np.zeros(1)
    pos, fl, frac = np.empty((1, size)), np.empty((1, size)), np.empty((1, size), np.float32)
    lo, hi, lo_i, hi_i = _extent(a, zero, limit)
    _axis(np.stack([np.ones(size), a]), lo, hi, zero, limit, pos, fl, frac)
    return fl[0].astype(np.intp), frac[0], lo_i, hi_i


def _separable_patch(src, m, size: int, pad: int, out: np.ndarray) -> np.ndarray:
    """An unrotated ROI whose patch is not much larger than the crop: one lerp on every row (or
    column) of the patch at the sampled columns (rows), then one at the sampled rows (columns)."""
    h, wd = src.shape[0] + 2 * pad, src.shape[1] + 2 * pad
    u, off = np.arange(size, dtype=np.float64) + 0.5, 0.5 - pad
    ends = []
    for a, limit in ((m[0, 0] * u + (m[0, 2] - off), wd), (m[1, 1] * u + (m[1, 2] - off), h)):
        i, f, lo_i, hi_i = _axis_samples(a, limit)
        ends.append((i - lo_i, f, lo_i, hi_i))
    (xi, fx, c0, c1), (yi, fy, r0, r1) = ends
    c = out.shape[2]
    patch = _region(src, pad, r0, r1 + 2, c0, c1 + 2)
    # rows first or columns first: the cheaper intermediate (size x patch width or height x size)
    cols = np.concatenate([xi, xi + 1])
    rows = np.concatenate([yi, yi + 1])
    if patch.shape[0] <= patch.shape[1]:  # columns first, on every patch row
        pc = np.take(patch, cols, axis=1)  # (ph, 2 * size, c) uint8
        hz = _lerp(pc[:, :size], pc[:, size:], np.repeat(fx, c).reshape(size, c), np.empty((patch.shape[0], size, c), np.float32))
        pr = np.take(hz, rows, axis=0)
        return _lerp(pr[:size], pr[size:], fy[:, None, None], out)
    pr = np.take(patch, rows, axis=0)  # (2 * size, pw, c) uint8
    vt = _lerp(pr[:size], pr[size:], fy[:, None, None], np.empty((size, patch.shape[1], c), np.float32))
    pc = np.take(vt, cols, axis=1)
    return _lerp(pc[:, :size], pc[:, size:], np.repeat(fx, c).reshape(size, c), out)


def _separable(src, m, size: int, pad: int, out: np.ndarray) -> np.ndarray:
    """An unrotated ROI: x depends on the column only, y on the row only, so the four neighbours
    of every sample are the crossings of two sampled rows and two sampled columns. They are
    fetched as one (2 size, 2 size) uint8 block (two ``np.take``; the padded image is never
    built: indices are clamped into the image and the zero ring is written over), then blended
    as in the general path (along x, then y; same arithmetic, same order)."""
    h, wd = src.shape[0] + 2 * pad, src.shape[1] + 2 * pad
    u, off = np.arange(size, dtype=np.float64) + 0.5, 0.5 - pad
    picks = []
    for a, limit in ((m[1, 1] * u + (m[1, 2] - off), h), (m[0, 0] * u + (m[0, 2] - off), wd)):
        i, f, _, _ = _axis_samples(a, limit)
        picks.append((np.concatenate([i, i + 1]) - pad, f))  # indices in ``src``
    (rows, fy), (cols, fx) = picks
    # the cheaper order: the intermediate is (2 size, W) rows-first or (H, 2 size) cols-first
    take_r = np.clip(rows, 0, src.shape[0] - 1)
    take_c = np.clip(cols, 0, src.shape[1] - 1)
    if 2 * size * src.shape[1] <= src.shape[0] * 2 * size:
        q = np.take(np.take(src, take_r, axis=0), take_c, axis=1)
    else:
        q = np.take(np.take(src, take_c, axis=1), take_r, axis=0)
    if pad:  # the zero ring: the rows and columns that fall outside the image
        q[(rows < 0) | (rows >= src.shape[0])] = 0
        q[:, (cols < 0) | (cols >= src.shape[1])] = 0
    q = q.astype(np.float32)  # once: numpy's ufuncs casting uint8 on the fly are 2-3x slower
    n, c = size, out.shape[2]
    wx = np.repeat(fx, c).reshape(1, n, c)
    top = _lerp(q[:n, :n], q[:n, n:], wx, np.empty((n, n, c), np.float32))
    bottom = _lerp(q[n:, :n], q[n:, n:], wx, np.empty((n, n, c), np.float32))
    np.subtract(bottom, top, out=bottom)
    np.multiply(bottom, fy[:, None, None], out=bottom)
    np.add(top, bottom, out=out)
    return out


def warp_roi(rgb: np.ndarray, roi: Roi, size: int, border: str = "replicate") -> np.ndarray:
    """The ROI of ``rgb`` (H, W, C uint8, or H x W) resampled to (size, size, C) float32 (values as
    in ``rgb``; (size, size) for a 2-D image): bilinear interpolation at each tensor pixel centre,
    exact up to float32 rounding of the blend (< 1e-4 of a grey level). ``border``: 'replicate'
    (the edge pixels continue, as MediaPipe's landmark crop) or 'zero' (black outside the image,
    as MediaPipe's detector letterbox). See the module docstring for the convention."""
    from interactive_eyes.faces.mediapipe_tasks import roi_matrix  # that module imports this one

    if border not in BORDERS:
        raise ValueError(f"border must be 'replicate' or 'zero', got {border!r}")
    src = np.asarray(rgb)
    if src.dtype != np.uint8:
        raise TypeError(f"warp_roi takes uint8 images, got {src.dtype}")
    flat = src.ndim == 2
    if flat:
        src = src[:, :, None]
    pad = 1 if border == "zero" else 0
    if src.shape[0] + 2 * pad < 2 or src.shape[1] + 2 * pad < 2:
        raise ValueError(f"image too small to resample: {np.shape(rgb)}")
    m = roi_matrix(roi, size)
    out = np.empty((size, size, src.shape[2]), np.float32)
    if roi.rotation == 0.0:
        # a (2 size)^2 block of neighbours, or a lerp over the patch's rows or columns: the one
        # with fewer values (measured: the letterbox's 128 block of an 832 x 448 frame 0.41 ms
        # vs 0.58; a 230 px face at 256, lerping the patch 0.65 ms vs 1.2)
        side = min(abs(m[0, 0]) * size, abs(m[1, 1]) * size, src.shape[0], src.shape[1]) + 2  # patch's, about
        fn = _separable if 4 * size * size < 2 * size * side else _separable_patch
        fn(src, m, size, pad, out)
    else:  # one RGBX word per pixel: four channels at a time
        for k in range(0, src.shape[2], 4):
            _general(src[:, :, k:k + 4], m, size, pad, _work(size), out[:, :, k:k + 4])
    return out[:, :, 0] if flat else out
