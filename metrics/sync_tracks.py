"""Sync metric, streaming part: 25 fps slot frames, face tracks cut by the gap rule, crops, embeddings.

Steps 2-4 of the pipeline in ``metrics/sync.py``'s docstring: each person's boxes form tracks (gaps of
up to 25 frames interpolated linearly, longer gaps end the track, the reference's rule); each track
cuts its crops 6 slots late (median-13 box smoothing, ``syncnet.StreamingSmoother``) from a small
ring of frames shared by all tracks, and embeds the windows its score will read as soon as their
5 crops exist.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from interactive_eyes.metrics import s3fd
from interactive_eyes.metrics import syncnet as sn

MAX_GAP = s3fd.NUM_FAILED_DET  # 25 frames a face may be missing inside one track (spec §1.2 step 5)
# A track of fewer than 7 boxes has a zero median-13 box size everywhere (scipy's zero padding
# outnumbers its values), so the reference geometry gives empty crops; such tracks are not cropped.
MIN_TRACK_SLOTS = sn.BOX_MEDFILT // 2 + 1


# --------------------------------------------------------------------------- frames shared by tracks


class SlotFrames:
    """The BGR frames of recent 25 fps slots, shared by all tracks; duplicated slots share one array."""

    def __init__(self):
        self._frames: dict[int, np.ndarray] = {}

    def put(self, slot: int, frame: np.ndarray) -> None:
        self._frames[slot] = frame

    def get(self, slot: int) -> np.ndarray:
        return self._frames[slot]

    def release_below(self, slot: int) -> None:
        for s in [s for s in self._frames if s < slot]:
            del self._frames[s]

    def __len__(self) -> int:
        return len(self._frames)


class Embedder:
    """The loaded network and how to run it."""

    def __init__(self, model, device, batch_size: int):
        self.model = model
        self.device = device
        self.batch_size = batch_size
        self.n_video = 0
        self.n_audio = 0

    def video(self, crops: np.ndarray, starts: list[int]) -> torch.Tensor:
        self.n_video += len(starts)
        return sn.embed_video_windows(self.model, crops, starts, device=self.device, batch_size=self.batch_size)

    def audio(self, mfcc: np.ndarray, starts) -> torch.Tensor:
        starts = list(starts)
        self.n_audio += len(starts)
        return sn.embed_audio_windows(self.model, mfcc, starts, device=self.device, batch_size=self.batch_size)


# --------------------------------------------------------------------------- one track, online


class Track:
    """One face track: interpolates gaps, smooths, crops 6 slots late, embeds the needed windows.

    ``need(slot)`` says whether the window starting at that 25 fps slot must be embedded.
    """

    def __init__(self, start: int, frames: SlotFrames, embedder: Embedder, need: Callable[[int], bool]):
        self.start = start
        self.frames = frames
        self.embedder = embedder
        self.need = need
        self.boxes: list[np.ndarray] = []  # per slot from ``start``, interpolated
        self.n_dets = 0
        self.last_det: int | None = None
        self.smoother = sn.StreamingSmoother()
        self.crops: list[np.ndarray] = []  # crops[i - crop_base] = crop of slot start + i
        self.crop_base = 0
        self.pending: list[int] = []  # relative window starts waiting for a batch
        self.embeddings: dict[int, torch.Tensor] = {}  # relative window start -> embedding
        self.closed = False

    @property
    def n_slots(self) -> int:
        return len(self.boxes)

    @property
    def end(self) -> int:
        return self.start + len(self.boxes)

    def add(self, slot: int, box: np.ndarray) -> None:
        box = np.asarray(box, dtype=np.float64)
        if self.last_det is not None and slot - self.last_det > 1:  # linear interpolation of the gap
            prev = self.boxes[-1]
            gap = slot - self.last_det
            for g in range(1, gap):
                self._push(prev + (box - prev) * (g / gap))
        self._push(box)
        self.n_dets += 1
        self.last_det = slot
        self._advance()

    def _push(self, box: np.ndarray) -> None:
        self.boxes.append(box)
        self.smoother.push(box)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.smoother.end()
            self._advance()
            self._flush()

    def oldest_needed(self) -> int | None:
        """The first slot whose frame this track may still crop."""
        return None if self.closed else self.start + self.smoother.n_done

    def mean_face_size(self) -> float:
        b = np.asarray(self.boxes)
        return float(max(np.mean(b[:, 2] - b[:, 0]), np.mean(b[:, 3] - b[:, 1])))

    def _advance(self) -> None:
        if self.closed and self.n_slots < MIN_TRACK_SLOTS:
            return  # medfilt-13 over < 7 boxes is 0 (zero padding): no crop, and at most one window lost
        for i, (s, cx, cy) in self.smoother.ready():
            self.crops.append(sn.crop_face(self.frames.get(self.start + i), s, cx, cy))
            w = i - (sn.FRAMES_PER_WINDOW - 1)  # the window that ends with this crop
            if w < 0:
                continue
            if self.need(self.start + w):
                self.pending.append(w)
                if len(self.pending) >= self.embedder.batch_size:
                    self._flush()
            elif self.pending:  # keep only contiguous runs of crops in memory
                self._flush()
        if not self.pending:  # crops older than the last 4 can no longer start a needed window
            self._drop_crops_below(self.crop_base + len(self.crops) - (sn.FRAMES_PER_WINDOW - 1))

    def _flush(self) -> None:
        if not self.pending:
            return
        lo = self.pending[0]
        hi = self.pending[-1] + sn.FRAMES_PER_WINDOW
        block = np.stack(self.crops[lo - self.crop_base : hi - self.crop_base])
        emb = self.embedder.video(block, [w - lo for w in self.pending])
        for w, e in zip(self.pending, emb):
            self.embeddings[w] = e
        self.pending = []
        self._drop_crops_below(hi - (sn.FRAMES_PER_WINDOW - 1))

    def _drop_crops_below(self, index: int) -> None:
        k = index - self.crop_base
        if k > 0:
            del self.crops[:k]
            self.crop_base = index


class Tracks:
    """A person's boxes (from the shared face tracks) cut into tracks by the 25-frame gap rule."""

    def __init__(self, make_track: Callable[[int], Track]):
        self.make_track = make_track
        self.current: Track | None = None
        self.done: list[Track] = []

    def observe(self, slot: int, box) -> None:
        cur = self.current
        if cur is not None and slot - cur.last_det > MAX_GAP:
            cur.close()
            self.done.append(cur)
            self.current = cur = None
        if box is None:
            return
        if cur is None:
            self.current = cur = self.make_track(slot)
        cur.add(slot, box)

    def close(self) -> list[Track]:
        if self.current is not None:
            self.current.close()
            self.done.append(self.current)
            self.current = None
        return self.done

    def open_tracks(self) -> list[Track]:
        return [self.current] if self.current is not None else []


class S3fdTracks:
    """Single-person clips with ``detector="s3fd"``: S3FD boxes of every frame linked by IoU
    (``s3fd.IouTracker``, the reference's tracker), each IoU track feeding one ``Track``."""

    def __init__(self, detector, frames: SlotFrames, embedder: Embedder):
        self.detector = detector
        self.frames = frames
        self.embedder = embedder
        self.tracker = s3fd.IouTracker()
        self.open: dict[int, Track] = {}
        self.done: list[Track] = []

    def detect(self, rgb: np.ndarray) -> np.ndarray:
        return self.detector.detect(np.ascontiguousarray(rgb))

    def observe(self, slot: int, dets: np.ndarray) -> None:
        for t in self.tracker.expired(slot):
            tr = self.open.pop(t.id)
            tr.close()
            self.done.append(tr)
        for tid, box in self.tracker.update(slot, dets):
            if tid not in self.open:
                self.open[tid] = Track(slot, self.frames, self.embedder, lambda _s: True)
            self.open[tid].add(slot, box)

    def open_tracks(self) -> list[Track]:
        return list(self.open.values())

    def close(self) -> list[Track]:
        """Every track, in order of their first slot."""
        for tr in self.open.values():
            tr.close()
            self.done.append(tr)
        self.open = {}
        return sorted(self.done, key=lambda t: t.start)
