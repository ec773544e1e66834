"""``puppet``: the per-person signals (loudness, listening weight, sway, nods, blinks, mouth opening)
and the renderer that applies them to the reference frame. See ``puppet.py``'s docstring.
"""

from __future__ import annotations

from interactive_eyes.baselines.puppet_faces import FaceGeometry

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


class PersonRenderer:
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
        # the signals arrive as numpy float64 scalars: cast to float32 so the maps stay float32
        # (cv2.remap accepts no float64 map) under numpy 2's promotion rules too (NEP 50: a
        # float64 scalar times a float32 array is float64), and the values are the same as under
        # numpy 1, which cast the scalar to float32
        if blink > 1e-3:
            b = np.float32(blink)
            for (bx0, by0, bx1, by1), gx, gy, unit in self.eyes:
                src = cv2.remap(self.ref, gx, gy + b * unit, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
                _paste(patch, src, bx0 - ox, by0 - oy)
        if mouth > 1e-3:
            bx0, by0, bx1, by1 = self.mouth_box
            gx, gy = self.mouth_grid
            shift = np.float32(mouth * self.drop)
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
