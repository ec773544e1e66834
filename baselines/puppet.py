"""``puppet``: a non-learned animation of the reference frame, the reference point above ``static``.

Every person found in the reference frame is animated from **their own audio track only** (the
annotated speaking segments are not used, so the puppet gets exactly what a real method gets):

* **Listening head motion.** While a person's track is quiet they sway and nod: the head region
  (a feathered ellipse around the FaceMesh face oval) is rotated about a pivot under the chin and
  shifted. Roll, sideways and vertical drift are each a sum of three sinusoids (0.15-0.6 Hz,
  random phases); nods are 0.6 s down-and-up bumps at random times (about one per 4 s). The
  amplitude is scaled by the listening weight, which fades over ~0.4 s at turn boundaries.
* **Blinks**, speaking or listening, at random times (``blinks_per_minute``; people blink about
  15-20 times a minute at rest): the eye region is squashed vertically, eyelid skin above and
  below being pulled over the eye (close 70 ms, hold 50 ms, open 150 ms).
* **Mouth opening** follows the person's loudness: the RMS level of their track in a 40 ms window
  at each frame maps linearly from -50 dBFS (closed) to -20 dBFS (fully open). The lower lip and
  jaw move down and the upper lip up, separating the lips by up to ``mouth_open`` x mouth width;
  the lower face stretches/compresses to follow, and the gap between the lips is darkened like an open mouth.

All randomness comes from ``numpy.random.default_rng`` seeded by (seed, person index), so the same
seed gives the same frames. People are found with MediaPipe (BlazeFace full-range detector, then
the 468-point FaceMesh in static-image mode inside each face's region), the N largest faces
sorted left to right by box centre (the AnyTalker binding rule, spec/baselines.md §2.4): track i
drives the i-th face from the left. Faces are assumed upright (no roll compensation).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interactive_eyes.baselines.base import Capabilities, Item, Method

FPS = 25  # spec/baselines.md §5.4: normalised outputs are 25 fps

# MediaPipe 468-point mesh indices (the canonical face model; the 478-point refined mesh keeps them).
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
             152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
FOREHEAD, CHIN = 10, 152
# eye contours: image-left eye (the subject's right) and image-right eye; (upper lid, lower lid) mid points
EYES = (
    {"contour": (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246), "lids": (159, 145)},
    {"contour": (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466), "lids": (386, 374)},
)
MOUTH_CORNERS = (61, 291)
INNER_LIPS = (13, 14)  # upper lip's lower edge, lower lip's upper edge (centre)

# Loudness -> behaviour. Levels measured on the released InteractiveEyes tracks (interact_1, 11,
# 25): outside a person's turns their track stays below -73 dBFS (95th percentile, 40 ms RMS),
# inside them the median is -22 to -36 dBFS and the 5th percentile -31 to -56 dBFS.
SPEECH_DB = -55.0  # a frame at or above this level counts as the person talking
MOUTH_CLOSED_DB = -50.0  # mouth opening is 0 at or below this level ...
MOUTH_FULL_DB = -20.0  # ... and 1 at or above this one (linear in between)
HANGOVER_S = 0.2  # talking is held this long after the level drops (bridges short pauses)
FADE_S = 0.4  # the listening weight ramps over this long at turn boundaries

# Motion amplitudes at head_motion=1, relative to the face height (forehead to chin) where in pixels.
ROLL_DEG = 2.0
SWAY = 0.02
DRIFT = 0.012
NOD = 0.035
NOD_RATE = 0.25  # nods per second of listening
NOD_S = 0.6
BLINK_CLOSE_S, BLINK_HOLD_S, BLINK_OPEN_S = 0.07, 0.05, 0.15
MOUTH_DARK = (40.0, 18.0, 20.0)  # RGB of the open-mouth cavity
MOUTH_DARK_ALPHA = 0.8
UPPER_LIP_SHARE = 0.3  # share of the lip separation taken by the upper lip moving up


@dataclass(frozen=True)
class FaceGeometry:
    """Where one person's face parts are in the reference frame (pixels)."""

    box: tuple[float, float, float, float]  # face oval bounds x1, y1, x2, y2
    eyes: tuple[tuple[float, float, float, float], ...]  # (centre x, lid-midline y, width, half-height)
    mouth: tuple[float, float, float]  # (lip-line y, left corner x, right corner x)
    chin: tuple[float, float]
    source: str  # which landmark model gave them

    @property
    def height(self) -> float:
        return self.chin[1] - self.box[1]

    def to_dict(self) -> dict[str, Any]:
        r = lambda v: [round(float(x), 2) for x in v]  # noqa: E731
        return {"box": r(self.box), "eyes": [r(e) for e in self.eyes], "mouth": r(self.mouth),
                "chin": r(self.chin), "source": self.source}


def geometry_from_mesh(pts) -> FaceGeometry:
    """Face parts from a (468+, 2) MediaPipe mesh in frame pixels."""
    import numpy as np

    pts = np.asarray(pts, dtype=np.float64)
    oval = pts[list(FACE_OVAL)]
    eyes = []
    for eye in EYES:
        c = pts[list(eye["contour"])]
        up, lo = pts[eye["lids"][0]], pts[eye["lids"][1]]
        eyes.append((float(c[:, 0].mean()), float((up[1] + lo[1]) / 2), float(np.ptp(c[:, 0])),
                     float(max(0.5, (lo[1] - up[1]) / 2))))
    lip_y = float((pts[INNER_LIPS[0], 1] + pts[INNER_LIPS[1], 1]) / 2)
    return FaceGeometry(
        box=(float(oval[:, 0].min()), float(oval[:, 1].min()), float(oval[:, 0].max()), float(oval[:, 1].max())),
        eyes=tuple(eyes),
        mouth=(lip_y, float(pts[MOUTH_CORNERS[0], 0]), float(pts[MOUTH_CORNERS[1], 0])),
        chin=(float(pts[CHIN, 0]), float(pts[CHIN, 1])),
        source="mediapipe-facemesh",
    )


def _mediapipe_solutions():
    try:
        import mediapipe as mp
    except ImportError as exc:  # pragma: no cover - mediapipe is a hard dependency
        raise ImportError(f"puppet needs mediapipe==0.10.21 ({exc})") from None
    if not hasattr(mp, "solutions"):  # removed in 0.10.31 (spec/metrics.md, known issue 10)
        raise ImportError(f"puppet needs mediapipe's legacy `solutions` API (mediapipe==0.10.21), "
                          f"found mediapipe {getattr(mp, '__version__', '?')}")
    return mp.solutions


def detect_face_boxes(rgb) -> list[tuple[float, float, float, float]]:
    """Face boxes (x1, y1, x2, y2) from BlazeFace full-range (MediaPipe ``model_selection=1``).

    The full-range model is used because the mesh's own short-range detector misses the smaller
    faces of wide two-person shots (measured: it finds no face in two 512 px portraits side by side).
    """
    import numpy as np

    sol = _mediapipe_solutions()
    h, w = rgb.shape[:2]
    # min_detection_confidence 0.5: MediaPipe's own default
    with sol.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5) as det:
        res = det.process(np.ascontiguousarray(rgb))
    boxes = []
    for d in res.detections or []:
        bb = d.location_data.relative_bounding_box
        x1, y1 = bb.xmin * w, bb.ymin * h
        boxes.append((x1, y1, x1 + bb.width * w, y1 + bb.height * h))
    return boxes


def locate_faces(rgb, n_people: int, boxes=None) -> list[FaceGeometry]:
    """The face geometry of up to ``n_people`` people, left to right.

    ``boxes``: known face boxes (x1, y1, x2, y2), one per person; otherwise the N largest faces
    found by ``detect_face_boxes`` are used. FaceMesh (static-image mode) then runs on a square
    region of twice the box side around each box; the mesh whose centre is nearest the box centre
    is kept. A face whose mesh is not found is left out (the caller counts them).
    """
    import numpy as np

    h, w = rgb.shape[:2]
    if boxes is None:
        boxes = sorted(detect_face_boxes(rgb), key=lambda b: (b[2] - b[0]) * (b[3] - b[1]), reverse=True)[:n_people]
    boxes = sorted(boxes, key=lambda b: (b[0] + b[2]) / 2)
    sol = _mediapipe_solutions()
    out = []
    # max_num_faces=2: when the neighbour's face reaches into the region both come back and the
    # nearest is kept, rather than whichever face the mesh's detector scores higher
    with sol.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=2, refine_landmarks=False,
                                min_detection_confidence=0.5) as mesh:
        for x1, y1, x2, y2 in boxes:
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            half = max(x2 - x1, y2 - y1)
            rx0, ry0 = max(0, int(cx - half)), max(0, int(cy - half))
            rx1, ry1 = min(w, int(cx + half) + 1), min(h, int(cy + half) + 1)
            crop = np.ascontiguousarray(rgb[ry0:ry1, rx0:rx1])
            if crop.shape[0] < 16 or crop.shape[1] < 16:
                continue
            res = mesh.process(crop)
            meshes = [np.array([(p.x * crop.shape[1] + rx0, p.y * crop.shape[0] + ry0) for p in f.landmark])
                      for f in res.multi_face_landmarks or []]
            if meshes:
                best = min(meshes, key=lambda m: float(np.hypot(*(m.mean(axis=0) - (cx, cy)))))
                out.append(geometry_from_mesh(best))
    return out


# --------------------------------------------------------------------------- signals


def frame_levels_db(track, rate: int, n_frames: int, fps: float):
    """RMS level (dBFS) of a mono track in a 1/fps window centred on each frame time."""
    import numpy as np

    x = np.asarray(track, dtype=np.float64)
    win = max(1, int(round(rate / fps)))
    centres = np.round(np.arange(n_frames) * rate / fps).astype(np.int64)
    padded = np.concatenate([np.zeros(win // 2), x, np.zeros(win)])
    csum = np.concatenate([[0.0], np.cumsum(padded**2)])
    power = (csum[centres + win] - csum[centres]) / win
    return 10.0 * np.log10(power + 1e-12)


def _moving(values, size: int, fn: str):
    import numpy as np
    from scipy.ndimage import maximum_filter1d, uniform_filter1d

    if size <= 1:
        return np.asarray(values, dtype=np.float64)
    if fn == "max":
        return maximum_filter1d(np.asarray(values, dtype=np.float64), size=size, mode="nearest")
    return uniform_filter1d(np.asarray(values, dtype=np.float64), size=size, mode="nearest")


def person_signals(level_db, fps: float, rng, *, head_motion: float, blinks_per_minute: float):
    """Per-frame animation signals of one person: listening weight, mouth opening, blink, head pose.

    Returns a dict of arrays of length n: ``listen`` in [0, 1], ``mouth`` in [0, 1], ``blink`` in
    [0, 1], ``roll`` (degrees), ``dx``/``dy`` (face heights), plus event counts.
    """
    import numpy as np

    n = len(level_db)
    t = np.arange(n) / fps
    talking = (level_db >= SPEECH_DB).astype(np.float64)
    talking = _moving(talking, 2 * int(round(HANGOVER_S * fps)) + 1, "max")
    listen = 1.0 - np.clip(_moving(talking, int(round(FADE_S * fps)) | 1, "mean"), 0.0, 1.0)

    mouth = np.clip((level_db - MOUTH_CLOSED_DB) / (MOUTH_FULL_DB - MOUTH_CLOSED_DB), 0.0, 1.0)
    mouth = np.convolve(np.pad(mouth, 1, mode="edge"), [0.25, 0.5, 0.25], mode="valid")  # 3-frame smoothing

    def drift():
        f = rng.uniform(0.15, 0.6, size=3)
        ph = rng.uniform(0.0, 2 * np.pi, size=3)
        return np.sin(2 * np.pi * f[:, None] * t[None, :] + ph[:, None]).mean(axis=0)

    roll, sway, vert = drift(), drift(), drift()
    # nods: a Poisson process over the whole clip, each nod weighted by the listening weight
    nods = np.zeros(n)
    nod_times = []
    s = rng.exponential(1.0 / NOD_RATE)
    while s < n / fps:
        nod_times.append(s)
        s += rng.exponential(1.0 / NOD_RATE)
    for s in nod_times:
        tau = t - s
        inside = (tau >= 0) & (tau <= NOD_S)
        nods[inside] = np.maximum(nods[inside], np.sin(np.pi * tau[inside] / NOD_S))
    # blinks: first one within the first 2.5 s, then a refractory 1.2 s plus an exponential wait
    blink = np.zeros(n)
    blink_times = []
    if blinks_per_minute > 0:
        mean_gap = 60.0 / blinks_per_minute
        s = rng.uniform(0.3, 2.5)
        while s < n / fps:
            blink_times.append(s)
            s += 1.2 + rng.exponential(max(0.1, mean_gap - 1.2))
    for s in blink_times:
        tau = t - s
        close = np.clip(tau / BLINK_CLOSE_S, 0, 1)
        reopen = np.clip(1 - (tau - BLINK_CLOSE_S - BLINK_HOLD_S) / BLINK_OPEN_S, 0, 1)
        b = np.where(tau < 0, 0.0, np.minimum(close, reopen))
        blink = np.maximum(blink, b)
    k = head_motion * listen
    return {
        "listen": listen,
        "mouth": mouth,
        "blink": blink,
        "roll": k * ROLL_DEG * roll,
        "dx": k * SWAY * sway,
        "dy": k * (DRIFT * vert + NOD * nods),
        "n_blinks": len(blink_times),
        "n_nods": int(sum(1 for s in nod_times if listen[min(n - 1, int(s * fps))] > 0.5)),
    }


# --------------------------------------------------------------------------- rendering


class _PersonRenderer:
    """Precomputed regions and displacement fields of one face; ``apply`` animates one frame."""

    def __init__(self, ref, geom: FaceGeometry, mouth_open: float):
        import numpy as np

        H, W = ref.shape[:2]
        self.ref = ref
        x1, y1, x2, y2 = geom.box
        fh = max(8.0, geom.height)
        fw = max(8.0, x2 - x1)
        self.fh = fh
        # head ellipse: the face oval widened for hair and ears, feathered
        ecx, ecy = (x1 + x2) / 2, (y1 + geom.chin[1]) / 2 - 0.08 * fh
        ea, eb = 0.62 * fw, 0.68 * fh
        sigma = 0.06 * fh
        pad = 3 * sigma + 0.1 * fh
        self.x0, self.y0 = max(0, int(ecx - ea - pad)), max(0, int(ecy - eb - pad))
        self.x1, self.y1 = min(W, int(ecx + ea + pad) + 1), min(H, int(ecy + eb + pad) + 1)
        yy, xx = np.mgrid[self.y0 : self.y1, self.x0 : self.x1].astype(np.float32)
        inside = (((xx - ecx) / ea) ** 2 + ((yy - ecy) / eb) ** 2 <= 1.0).astype(np.float32)
        import cv2

        self.mask = cv2.GaussianBlur(inside, (0, 0), sigmaX=sigma)[..., None]
        self.pivot = (geom.chin[0] - self.x0, geom.chin[1] + 0.15 * fh - self.y0)  # under the chin, ROI coords

        # eyes: vertical pull of lid skin over the eye (see module docstring)
        self.eyes = []
        for ex, ey, ew, ah in geom.eyes:
            a = max(ah, 1.5) + 1.0  # reach just past the lashes
            reach = 3.0 * a
            half_w = 0.75 * ew
            bx0, bx1 = max(0, int(ex - half_w)), min(W, int(ex + half_w) + 2)
            by0, by1 = max(0, int(ey - reach) - 1), min(H, int(ey + reach) + 2)
            gy, gx = np.mgrid[by0:by1, bx0:bx1].astype(np.float32)
            wx = np.cos(0.5 * np.pi * np.clip(np.abs(gx - ex) / half_w, 0, 1)) ** 2
            d = gy - ey
            unit = np.where(d >= 0, 1.0, -1.0) * a * wx * np.clip(1 - np.abs(d) / reach, 0, 1)
            self.eyes.append(((bx0, by0, bx1, by1), gx, gy, unit.astype(np.float32)))

        # mouth: the lower lip and jaw move down, the upper lip up a little, the gap darkens
        lip_y, mx0, mx1 = geom.mouth
        mw = max(4.0, mx1 - mx0)
        mcx = (mx0 + mx1) / 2
        chin_y = geom.chin[1]
        self.drop = mouth_open * mw  # lip separation in pixels at full opening
        fall = 0.5 * max(4.0, chin_y - lip_y) + self.drop  # below the chin the shift fades out over this
        lift = 0.15 * fh  # above the lip line the upper lip's lift fades out over this
        # cos^2 window 0.6 mouth widths wide each side: the corners (0.5 widths out) barely move
        half_w = 0.6 * mw
        bx0, bx1 = max(0, int(mcx - half_w)), min(W, int(mcx + half_w) + 2)
        by0, by1 = max(0, int(lip_y - lift) - 1), min(H, int(chin_y + fall) + 2)
        gy, gx = np.mgrid[by0:by1, bx0:bx1].astype(np.float32)
        wx = np.cos(0.5 * np.pi * np.clip(np.abs(gx - mcx) / half_w, 0, 1)) ** 2
        down = (1 - UPPER_LIP_SHARE) * np.clip(1 - (gy - chin_y) / fall, 0, 1)
        up = -UPPER_LIP_SHARE * np.clip(1 - (lip_y - gy) / lift, 0, 1)
        self.mouth_box = (bx0, by0, bx1, by1)
        self.mouth_grid = (gx, gy)
        self.mouth_unit = (wx * np.where(gy >= lip_y, down, up)).astype(np.float32)
        self.mouth_wx = wx.astype(np.float32)
        self.lip_y = lip_y

    def apply(self, frame, blink: float, mouth: float, roll: float, dx: float, dy: float) -> None:
        """Draw this person into ``frame`` (modified in place) for one time step."""
        import cv2
        import numpy as np

        patch = self.ref[self.y0 : self.y1, self.x0 : self.x1].copy()
        ox, oy = self.x0, self.y0
        if blink > 1e-3:
            for (bx0, by0, bx1, by1), gx, gy, unit in self.eyes:
                src = cv2.remap(self.ref, gx, gy + blink * unit, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
                _paste(patch, src, bx0 - ox, by0 - oy)
        if mouth > 1e-3:
            bx0, by0, bx1, by1 = self.mouth_box
            gx, gy = self.mouth_grid
            shift = mouth * self.drop
            src = cv2.remap(self.ref, gx, gy - shift * self.mouth_unit, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            # the gap between the moved lips, thinning to the corners, is darkened
            gap = shift * self.mouth_wx
            top, bottom = self.lip_y - UPPER_LIP_SHARE * gap, self.lip_y + (1 - UPPER_LIP_SHARE) * gap
            depth = np.minimum(gy - top, bottom - gy)
            alpha = MOUTH_DARK_ALPHA * np.clip(depth + 0.5, 0, 1) * (gap > 0.5)
            src = src.astype(np.float32)
            src += alpha[..., None] * (np.asarray(MOUTH_DARK, dtype=np.float32) - src)
            _paste(patch, np.clip(src + 0.5, 0, 255).astype(np.uint8), bx0 - ox, by0 - oy)
        if abs(roll) > 1e-4 or abs(dx) > 1e-4 or abs(dy) > 1e-4:
            m = cv2.getRotationMatrix2D(self.pivot, roll, 1.0)
            m[0, 2] += dx * self.fh
            m[1, 2] += dy * self.fh
            patch = cv2.warpAffine(patch, m, (patch.shape[1], patch.shape[0]), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REFLECT)
        region = frame[self.y0 : self.y1, self.x0 : self.x1]
        blended = region.astype(np.float32) + self.mask * (patch.astype(np.float32) - region)
        frame[self.y0 : self.y1, self.x0 : self.x1] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)


def _paste(dst, src, x, y) -> None:
    """Copy ``src`` into ``dst`` at (x, y), cut to ``dst``'s bounds."""
    h, w = src.shape[:2]
    sx0, sy0 = max(0, -x), max(0, -y)
    dx0, dy0 = max(0, x), max(0, y)
    dx1, dy1 = min(dst.shape[1], x + w), min(dst.shape[0], y + h)
    if dx1 > dx0 and dy1 > dy0:
        dst[dy0:dy1, dx0:dx1] = src[sy0 : sy0 + dy1 - dy0, sx0 : sx0 + dx1 - dx0]


# --------------------------------------------------------------------------- the method


class PuppetMethod(Method):
    """Non-learned animation: listening sway/nods and blinks, mouth opening from each person's own loudness."""

    name = "puppet"
    version = "1"
    capabilities = Capabilities(
        max_people=None,
        binding="left_right_detection",
        native_fps=FPS,
        frame_rule="round(25 * T) frames, T = the longest track",
        resolution="the reference frame, cut to even width and height",
        needs_reference_frame=True,
        muxes_audio=True,
        uses_prompt=False,
        deterministic=True,
        code_license="Apache-2.0",
    )
    DEFAULT_PARAMS = {
        "crf": 18,  # spec/baselines.md §5.4 step 5
        "head_motion": 1.0,  # scales roll, sway, drift and nods
        "blinks_per_minute": 15.0,
        "mouth_open": 0.22,  # lip separation at full loudness, as a fraction of the mouth width
    }

    def __init__(self, **params: Any):
        super().__init__(**params)
        self._faces_cache: dict[tuple, list[FaceGeometry]] = {}

    def faces(self, item: Item) -> list[FaceGeometry]:
        """The item's faces, left to right (cached per reference file and boxes)."""
        p = Path(item.reference_frame)
        st = p.stat()
        boxes = tuple(pp.face_box for pp in item.people) if all(pp.face_box for pp in item.people) else None
        key = (str(p.resolve()), st.st_size, st.st_mtime_ns, item.n_people, boxes)
        if key not in self._faces_cache:
            from interactive_eyes.baselines.base import load_reference_frame

            self._faces_cache.clear()
            self._faces_cache[key] = locate_faces(load_reference_frame(p), item.n_people, boxes)
        return self._faces_cache[key]

    def check(self, item: Item) -> str | None:
        reason = super().check(item)
        if reason:
            return reason
        found = len(self.faces(item))
        if found < item.n_people:
            return f"{item.reference_frame}: found {found} face(s) with landmarks, the clip has {item.n_people} people"
        return None

    def generate(self, item: Item, out_path: Path, *, seed: int) -> dict[str, Any]:
        import numpy as np

        from interactive_eyes.baselines.base import frame_count, load_reference_frame, load_tracks, mix_tracks
        from interactive_eyes.media.video import write_video

        t0 = time.perf_counter()
        ref = load_reference_frame(item.reference_frame)
        faces = self.faces(item)
        if len(faces) < item.n_people:
            raise RuntimeError(self.check(item) or "faces not found")
        tracks, rate = load_tracks(item)
        mix, clipped = mix_tracks(tracks)
        n = frame_count(item.duration, FPS)
        p = self._params
        signals, renderers = [], []
        for k, geom in enumerate(faces):
            rng = np.random.default_rng([int(seed) % (1 << 63), k])
            levels = frame_levels_db(tracks[k].mean(axis=1), rate, n, FPS)
            signals.append(person_signals(levels, FPS, rng, head_motion=float(p["head_motion"]),
                                          blinks_per_minute=float(p["blinks_per_minute"])))
            renderers.append(_PersonRenderer(ref, geom, float(p["mouth_open"])))
        t1 = time.perf_counter()

        def frames():
            for j in range(n):
                frame = ref.copy()
                for s, r in zip(signals, renderers):
                    r.apply(frame, s["blink"][j], s["mouth"][j], s["roll"][j], s["dx"][j], s["dy"][j])
                yield frame

        write_video(out_path, frames(), FPS, audio=mix, audio_rate=rate, crf=int(p["crf"]))
        t2 = time.perf_counter()
        h, w = ref.shape[:2]
        return {
            "frames": n,
            "fps": FPS,
            "width": w,
            "height": h,
            "duration": n / FPS,
            "audio_rate": rate,
            "audio_channels": int(mix.shape[1]),
            "mix_clipped_samples": clipped,
            "geometry": {"sx": 1.0, "sy": 1.0, "tx": 0.0, "ty": 0.0, "crop": [0, 0, w, h]},
            "people": [
                {"role": pp.role, "face": g.to_dict(), "blinks": s["n_blinks"], "nods": s["n_nods"],
                 "listening_fraction": round(float(np.mean(s["listen"] > 0.5)), 3),
                 "mean_mouth_opening": round(float(np.mean(s["mouth"])), 3)}
                for pp, g, s in zip(item.people, faces, signals)
            ],
            "seconds_prepare": round(t1 - t0, 3),
            "seconds_render_encode": round(t2 - t1, 3),
        }
