"""What SyncNet sees of a video: frames picked onto the 25 fps grid (spec §1.6) and the reference
crop geometry (§1.2 step 6: median-13 smoothed boxes, the crop, ``StreamingSmoother`` for a
stream). Part of the recipe in ``syncnet.py`` (names re-exported there).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

FPS = 25  # the network was trained on 25 fps video (§1.6: hard-coded three times in the scorer)
CROP_SIZE = 224  # §1.2 step 6: crops resized to 224x224
CROP_SCALE = 0.4  # crop_scale: rows cy - s .. cy + (1 + 2*0.4) s, cols cx -+ (1 + 0.4) s
CROP_PAD_VALUE = 110  # constant border value of cv2.copyMakeBorder in the reference
BOX_MEDFILT = 13  # median filter on s, cx, cy (scipy.signal.medfilt, zero-padded ends)
# Frame times are floats (pts * time_base); a slot boundary hit exactly (e.g. frame 12 of a 24 fps
# video at 0.5 s = slot 12.5) must round the way FFmpeg's exact rational arithmetic does.
GRID_EPS = 1e-6  # in 25 fps slots, i.e. 40 ns


# --------------------------------------------------------------------------- 25 fps grid (spec §1.6)


def grid_slot(time: float, fps: float = FPS) -> int:
    """The 25 fps slot a frame shown from ``time`` seconds starts in: round half up, as the
    libavfilter ``fps`` filter does (``round=near`` rescaling of the frame's pts)."""
    return int(math.floor(time * fps + 0.5 + GRID_EPS))


def select_frames(times: Sequence[float], end_time: float | None = None, fps: float = FPS) -> np.ndarray:
    """Index of the source frame shown in each 25 fps output slot (duplicates and drops).

    Output slot j (time j/25) shows the latest source frame whose start, rounded to the grid,
    is <= j; slots run from the first frame's slot to ``round(end_time * 25)`` (exclusive),
    ``end_time`` being when the last frame stops showing (its time + its duration; default: one
    average frame interval after it). This is what FFmpeg's ``fps=25`` filter outputs (checked
    against libavfilter through PyAV in the tests), i.e. ``ffmpeg -r 25``'s resampling: from 24
    fps one frame per second is repeated, from 30 fps one in six is dropped.
    """
    t = np.asarray(times, dtype=np.float64)
    if t.size == 0:
        return np.zeros(0, dtype=np.int64)
    if np.any(np.diff(t) <= 0):
        raise ValueError("frame times must increase strictly")
    if end_time is None:
        end_time = t[-1] + (float(np.mean(np.diff(t))) if t.size > 1 else 1.0 / fps)
    grid = GridState(fps)
    out: list[int] = []
    for i, ti in enumerate(t):
        out.extend([i - 1] * len(grid.push(float(ti))))  # slots of the previous frame
    out.extend([t.size - 1] * len(grid.finish(float(end_time))))
    return np.asarray(out, dtype=np.int64)


class GridState:
    """Streaming form of ``select_frames``. Feed frame times in order; ``push`` returns the 25 fps
    slots filled by the *previous* frame (known only once the next frame's time is), ``finish``
    those of the last frame."""

    def __init__(self, fps: float = FPS):
        self.fps = fps
        self._pending_slot: int | None = None  # grid slot of the frame waiting for its successor
        self.next_slot: int | None = None  # first slot not yet emitted

    def push(self, time: float) -> list[int]:
        slot = grid_slot(time, self.fps)
        if self._pending_slot is not None and slot < self._pending_slot:
            raise ValueError(f"frame time {time} goes backwards")
        out = self._emit_until(slot)
        if self.next_slot is None:
            self.next_slot = slot  # the output starts at the first frame (as the fps filter)
        self._pending_slot = slot
        return out

    def finish(self, end_time: float) -> list[int]:
        """Slots of the last frame, which shows until ``end_time`` (its time + its duration)."""
        return self._emit_until(grid_slot(end_time, self.fps))

    def _emit_until(self, stop: int) -> list[int]:
        if self._pending_slot is None:
            return []
        slots = list(range(max(self.next_slot, self._pending_slot), stop))
        if slots:
            self.next_slot = stop
        return slots


# --------------------------------------------------------------------------- crops (spec §1.2 step 6)


def box_params(boxes: np.ndarray) -> np.ndarray:
    """(T, 4) x1,y1,x2,y2 -> (T, 3) s, cx, cy with s = max(w, h) / 2 (before smoothing)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    s = np.maximum(b[:, 3] - b[:, 1], b[:, 2] - b[:, 0]) / 2
    return np.stack([s, (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], axis=1)


def smooth_boxes(boxes: np.ndarray) -> np.ndarray:
    """(T, 4) boxes of one track -> (T, 3) s, cx, cy, each median-filtered (kernel 13,
    ``scipy.signal.medfilt``, whose zero padding pulls the first and last 6 values down)."""
    import warnings

    from scipy.signal import medfilt

    p = box_params(boxes)
    with warnings.catch_warnings():  # tracks shorter than 13: zero padding is the intended behaviour
        warnings.filterwarnings("ignore", message="kernel_size exceeds volume extent")
        return np.stack([medfilt(p[:, k], BOX_MEDFILT) for k in range(3)], axis=1)


def crop_region(s: float, cx: float, cy: float) -> tuple[int, int, int, int]:
    """Rows y1:y2 and cols x1:x2 of the crop **in unpadded frame pixels** (may lie outside).

    The reference pads the frame by ``pad = int(1.8 s)`` and truncates in padded coordinates:
    y1 = int(cy + pad - s), y2 = int(cy + pad + 1.8 s), x1/x2 = int(cx + pad -/+ 1.4 s). The same
    truncation is applied here (then ``pad`` is subtracted), so the pixels are identical.
    """
    pad = int(s * (1 + 2 * CROP_SCALE))
    my, mx = cy + pad, cx + pad
    y1, y2 = int(my - s), int(my + s * (1 + 2 * CROP_SCALE))
    x1, x2 = int(mx - s * (1 + CROP_SCALE)), int(mx + s * (1 + CROP_SCALE))
    return y1 - pad, y2 - pad, x1 - pad, x2 - pad


def crop_face(frame: np.ndarray, s: float, cx: float, cy: float) -> np.ndarray:
    """224 x 224 crop of ``frame`` (H x W x 3 uint8, any channel order, kept) at smoothed s, cx, cy.

    A square of side 2.8 s (1.4 x the box's larger side) centred 0.4 s below the box centre;
    outside the frame the value is 110; resized with OpenCV's bilinear ``cv2.resize`` as in the
    reference. Only the crop region is materialised (the reference pads the whole frame first;
    the pixels are the same wherever its crop lies inside its padded frame, i.e. whenever the box
    centre is inside the frame).
    """
    import cv2

    y1, y2, x1, x2 = crop_region(s, cx, cy)
    if y2 <= y1 or x2 <= x1:
        raise ValueError(f"empty crop for box s={s:.2f} cx={cx:.2f} cy={cy:.2f}")
    h, w = frame.shape[:2]
    region = np.full((y2 - y1, x2 - x1, frame.shape[2]), CROP_PAD_VALUE, dtype=np.uint8)
    sy1, sy2, sx1, sx2 = max(y1, 0), min(y2, h), max(x1, 0), min(x2, w)
    if sy2 > sy1 and sx2 > sx1:
        region[sy1 - y1 : sy2 - y1, sx1 - x1 : sx2 - x1] = frame[sy1:sy2, sx1:sx2]
    return cv2.resize(region, (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_LINEAR)


class StreamingSmoother:
    """``smooth_boxes`` one box at a time: the smoothed value of box i is final once box i+6
    has arrived (or the track has ended), so crops can be cut with a delay of 6 slots instead of
    holding the whole track. Equal to ``smooth_boxes`` on the complete track (tested)."""

    half = BOX_MEDFILT // 2

    def __init__(self):
        self.params: list[np.ndarray] = []  # s, cx, cy per box
        self.n_done = 0
        self.ended = False

    def push(self, box: np.ndarray) -> None:
        self.params.append(box_params(box)[0])

    def end(self) -> None:
        self.ended = True

    def ready(self) -> list[tuple[int, np.ndarray]]:
        """(index, smoothed s/cx/cy) of every box whose value became final since the last call."""
        n = len(self.params)
        stop = n if self.ended else max(0, n - self.half)
        out = []
        if stop <= self.n_done:
            return out
        p = np.asarray(self.params)
        for i in range(self.n_done, stop):
            lo, hi = i - self.half, i + self.half + 1
            win = p[max(lo, 0) : min(hi, n)]
            zeros = max(0, -lo) + max(0, hi - n)  # medfilt's zero padding at both track ends
            if zeros:
                win = np.concatenate([win, np.zeros((zeros, 3))])
            out.append((i, np.median(win, axis=0)))
        self.n_done = stop
        return out
