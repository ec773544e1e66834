"""Where reference-image pixels land in a method's output (spec/baselines.md §5.4 ``geometry.json``).

Every method resizes its reference image by one of a few policies (table §5.4):

* ``resize``: plain resize to the output size, aspect ratio possibly changed (AnyTalker, Sonic;
  ``stretch`` is the same map: StableAvatar, AniPortrait);
* ``cover_crop``: scaled to cover an aspect-ratio bucket, then centre-cropped (MultiTalk,
  InfiniteTalk, LongCat, Hallo3, OmniAvatar);
* ``box_crop``: a box of the reference (a face crop, EchoMimic v1) resized to the output.

Each is an axis-aligned affine map ``x_out = sx * x_ref + tx``, ``y_out = sy * y_ref + ty`` in
continuous pixel coordinates (the top-left corner of pixel (0, 0) is (0, 0); a pixel's centre is
at +0.5). The analytic map is then checked by registering output frame 0 (an image-to-video
model reproduces its reference there) against the reference image with OpenCV's ECC (enhanced
correlation coefficient) alignment, started from the analytic map. Both maps and their residuals
(mean absolute grey-level difference, 0-255, over the output pixels the reference covers) are
recorded; when they disagree by more than ``AGREE_PX`` at the output's corners, the registered
map is the one to use (spec §5.4: "keep the registered map if they disagree").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

AGREE_PX = 2.0  # output pixels: analytic and registered maps closer than this at every corner agree
POLICIES = ("identity", "resize", "stretch", "cover_crop", "box_crop", "composite")


@dataclass(frozen=True)
class Geometry:
    """``x_out = sx * x_ref + tx``, ``y_out = sy * y_ref + ty`` (continuous pixel coordinates)."""

    policy: str
    sx: float
    sy: float
    tx: float
    ty: float
    ref_size: tuple[int, int]  # (width, height) of the reference image
    out_size: tuple[int, int]  # (width, height) of the output video
    crop: tuple[float, float, float, float] | None = None  # the reference region shown: x1, y1, x2, y2

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

    def matrix(self):
        """2x3 affine matrix in OpenCV's pixel-centre convention (for ``cv2.warpAffine``)."""
        import numpy as np

        # centre convention i = u - 0.5: i_out = s * i_ref + (0.5 * s + t - 0.5)
        return np.array([[self.sx, 0.0, 0.5 * self.sx + self.tx - 0.5],
                         [0.0, self.sy, 0.5 * self.sy + self.ty - 0.5]], dtype=np.float64)

    def apply(self, x: float, y: float) -> tuple[float, float]:
        return self.sx * x + self.tx, self.sy * y + self.ty


def _visible(ref_size, sx, sy, tx, ty, out_size):
    w, h = out_size
    x1, y1 = max(0.0, -tx / sx), max(0.0, -ty / sy)
    x2, y2 = min(float(ref_size[0]), (w - tx) / sx), min(float(ref_size[1]), (h - ty) / sy)
    return (round(x1, 3), round(y1, 3), round(x2, 3), round(y2, 3))


def resize(ref_size, out_size, policy: str = "resize") -> Geometry:
    (W, H), (w, h) = ref_size, out_size
    return Geometry(policy, w / W, h / H, 0.0, 0.0, tuple(ref_size), tuple(out_size), (0.0, 0.0, float(W), float(H)))


def cover_crop(ref_size, out_size) -> Geometry:
    """Scale so the reference covers the output, then centre-crop (what bucketed methods do)."""
    (W, H), (w, h) = ref_size, out_size
    s = max(w / W, h / H)
    tx, ty = (w - s * W) / 2.0, (h - s * H) / 2.0
    return Geometry("cover_crop", s, s, tx, ty, tuple(ref_size), tuple(out_size), _visible(ref_size, s, s, tx, ty, out_size))


def box_crop(ref_size, out_size, box) -> Geometry:
    """The reference region ``box`` (x1, y1, x2, y2) resized to the output."""
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = out_size
    sx, sy = w / (x2 - x1), h / (y2 - y1)
    return Geometry("box_crop", sx, sy, -x1 * sx, -y1 * sy, tuple(ref_size), tuple(out_size), (x1, y1, x2, y2))


def identity(ref_size) -> Geometry:
    return Geometry("identity", 1.0, 1.0, 0.0, 0.0, tuple(ref_size), tuple(ref_size), (0.0, 0.0, *map(float, ref_size)))


def warp_reference(ref_rgb, geom: Geometry):
    """The reference as the map says it appears in the output (outside: 0), and the covered mask."""
    import cv2
    import numpy as np

    w, h = geom.out_size
    src = ref_rgb
    scale = min(geom.sx, geom.sy)
    if scale < 0.8:  # anti-alias a downscale like a resize would (sigma ~ half the source step)
        src = cv2.GaussianBlur(ref_rgb, (0, 0), 0.5 / scale)
    warped = cv2.warpAffine(src, geom.matrix(), (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    mask = cv2.warpAffine(np.ones(ref_rgb.shape[:2], np.uint8), geom.matrix(), (w, h), flags=cv2.INTER_NEAREST,
                          borderMode=cv2.BORDER_CONSTANT)
    return warped, mask.astype(bool)


def residual(ref_rgb, frame0, geom: Geometry) -> float:
    """Mean absolute grey-level difference (0-255) between frame 0 and the mapped reference."""
    import numpy as np

    warped, mask = warp_reference(ref_rgb, geom)
    if not mask.any():
        return float("inf")
    g = lambda a: a.astype(np.float64) @ np.array([0.299, 0.587, 0.114])  # noqa: E731 (BT.601 luma)
    return float(np.abs(g(warped) - g(frame0))[mask].mean())


def register(ref_rgb, frame0, analytic: Geometry, iterations: int = 200) -> tuple[Geometry | None, str]:
    """Refine ``analytic`` by ECC alignment of frame 0 to the reference; (map or None, note).

    ECC finds W with frame0(x) ~ reference(W x): W maps output to reference pixels, so the
    reference -> output map is its inverse. Only scale and translation are kept (every policy is
    axis-aligned); the discarded rotation/shear is reported in the note when it is not small.
    """
    import cv2
    import numpy as np

    gray = lambda a: cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0  # noqa: E731
    ref = gray(ref_rgb)
    scale = min(analytic.sx, analytic.sy)
    if scale < 0.8:
        ref = cv2.GaussianBlur(ref, (0, 0), 0.5 / scale)
    m = analytic.matrix()
    inv = cv2.invertAffineTransform(m).astype(np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, iterations, 1e-6)
    try:
        _, warp = cv2.findTransformECC(gray(frame0), ref, inv, cv2.MOTION_AFFINE, criteria, None, 5)
    except cv2.error as exc:
        return None, f"registration did not converge ({' '.join(str(exc).split())[:120]})"
    fwd = cv2.invertAffineTransform(warp.astype(np.float64))
    sx, sy = float(fwd[0, 0]), float(fwd[1, 1])
    if sx <= 0 or sy <= 0:
        return None, "registration gave a flipped map"
    off = max(abs(float(fwd[0, 1])), abs(float(fwd[1, 0])))
    # back from the centre convention: t = i_offset - 0.5 * s + 0.5
    tx, ty = float(fwd[0, 2]) - 0.5 * sx + 0.5, float(fwd[1, 2]) - 0.5 * sy + 0.5
    g = Geometry("registered", sx, sy, tx, ty, analytic.ref_size, analytic.out_size,
                 _visible(analytic.ref_size, sx, sy, tx, ty, analytic.out_size))
    return g, ("" if off < 1e-3 else f"rotation/shear {off:.4f} ignored")


def corner_disagreement(a: Geometry, b: Geometry) -> float:
    """Largest distance (output pixels) between where the two maps put the reference's corners
    that fall inside the output."""
    import itertools

    W, H = a.ref_size
    x1, y1, x2, y2 = a.crop or (0.0, 0.0, W, H)
    worst = 0.0
    for x, y in itertools.product((x1, x2), (y1, y2)):
        ax, ay = a.apply(x, y)
        bx, by = b.apply(x, y)
        worst = max(worst, ((ax - bx) ** 2 + (ay - by) ** 2) ** 0.5)
    return worst


def checked(ref_rgb, frame0, analytic: Geometry) -> dict:
    """The geometry.json content: analytic and registered maps, residuals, and the map to use."""
    reg, note = register(ref_rgb, frame0, analytic)
    doc = {"analytic": analytic.to_dict(), "analytic_residual": round(residual(ref_rgb, frame0, analytic), 3)}
    if reg is None:
        doc.update(registered=None, registered_residual=None, disagreement_px=None, use="analytic", note=note)
        return doc
    dis = corner_disagreement(analytic, reg)
    doc.update(registered=reg.to_dict(), registered_residual=round(residual(ref_rgb, frame0, reg), 3),
               disagreement_px=round(dis, 3), use="analytic" if dis <= AGREE_PX else "registered", note=note)
    return doc
