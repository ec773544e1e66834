"""Lip sync: Sync-C / Sync-D (single-person) and the per-person Sync-C* (multi-person).

One metric, ``sync`` (``SyncC``), behind the contract of ``metrics/base.py``. Its per-clip value:

- **single-person clip**: Sync-C (LSE-C) of the person's face track against the video's own audio
  over all windows, exactly as ``SyncNetInstance.evaluate`` scores a crop (spec §1.4); Sync-D and
  the AV offset are in ``details``. With several tracks (the face lost for > 25 frames, or the
  ``s3fd`` detector finding more than one face) the longest track gives the value (spec §1.8);
  every track is listed in ``details["tracks"]``.
- **multi-person clip**: Sync-C* (ie-bench's definition, ``docs/sync.md``): for each person, their
  face track's windows against **their own audio track**, only the windows lying entirely inside
  their speaking segments; the value is the mean over the people who speak (``per_person`` holds
  each). ``sync_star_mode``: ``mask`` (default), ``segment`` or ``framewise`` (spec §1.8).

Pipeline per clip, streaming (the video is decoded once, by the engine):

1. each decoded frame is placed on the 25 fps grid by its timestamp (``syncnet.GridState``: the
   libavfilter ``fps=25`` rule, i.e. ``ffmpeg -r 25``); a 24 fps video repeats one frame a second;
2. each person's boxes (shared face tracks, or S3FD + IoU tracking) form tracks: gaps of up to 25
   frames are interpolated linearly, longer gaps end the track (the reference's rule);
3. the crop of slot j needs the box median-filtered over slots j-6..j+6 (kernel 13), so each
   track cuts its crops 6 slots late (``StreamingSmoother``) from a small ring of frames shared by
   all tracks: the reference geometry is reproduced exactly, and at most 6 + 25 + 1 frames are held
   (the 25 while a face is missing, until it is known whether the gap will be interpolated);
4. windows are embedded in batches as soon as their 5 crops exist; only the windows a score needs
   are embedded (mask mode: those inside the person's speaking segments) — the rows that are not
   kept would never be read, so the values equal those of the full matrix;
5. at the end of the clip, audio windows (MFCCs of the track's audio slice, int16 scale) are
   embedded, and the offset search runs on each track's distance matrix (spec §1.4).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from interactive_eyes.metrics import s3fd
from interactive_eyes.metrics import sync_reference as sref
from interactive_eyes.metrics import syncnet as sn
from interactive_eyes.metrics.base import STATUS_FAILED, ClipContext, ClipResult, FrameData, Metric

log = logging.getLogger(__name__)

SYNC_STAR_MODES = ("mask", "segment", "framewise")
WEIGHTINGS = ("person", "window")
DETECTORS = ("tracks", "s3fd")
MAX_GAP = s3fd.NUM_FAILED_DET  # 25 frames a face may be missing inside one track (spec §1.2 step 5)
# A track of fewer than 7 boxes has a zero median-13 box size everywhere (scipy's zero padding
# outnumbers its values), so the reference geometry gives empty crops; such tracks are not cropped.
MIN_TRACK_SLOTS = sn.BOX_MEDFILT // 2 + 1


# --------------------------------------------------------------------------- frames shared by tracks


class _SlotFrames:
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


class _Embedder:
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


class _Track:
    """One face track: interpolates gaps, smooths, crops 6 slots late, embeds the needed windows.

    ``need(slot)`` says whether the window starting at that 25 fps slot must be embedded.
    """

    def __init__(self, start: int, frames: _SlotFrames, embedder: _Embedder, need: Callable[[int], bool]):
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


class _Tracks:
    """A person's boxes (from the shared face tracks) cut into tracks by the 25-frame gap rule."""

    def __init__(self, make_track: Callable[[int], _Track]):
        self.make_track = make_track
        self.current: _Track | None = None
        self.done: list[_Track] = []

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

    def close(self) -> list[_Track]:
        if self.current is not None:
            self.current.close()
            self.done.append(self.current)
            self.current = None
        return self.done

    def open_tracks(self) -> list[_Track]:
        return [self.current] if self.current is not None else []


# --------------------------------------------------------------------------- scoring one track


def _slots_audio(audio: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Samples of 25 fps slots [start, stop): the reference's ``ffmpeg -ss start/25 -to stop/25``."""
    return audio[start * sn.SAMPLES_PER_FRAME : stop * sn.SAMPLES_PER_FRAME]


def _score_rows(
    embedder: _Embedder,
    video: dict[int, torch.Tensor],
    audio: np.ndarray,
    n_frames: int,
    rows: list[int],
    video_offset: int = 0,
) -> tuple[torch.Tensor, int]:
    """Distances (len(rows) x 31) of the clip made of ``n_frames`` crops and ``audio`` (already
    sliced to start with the first crop): rows are window indices of that clip, video embeddings
    are ``video[video_offset + row]``. Returns (dists, n_win of the clip)."""
    n_win = sn.n_windows(n_frames, len(audio))
    rows = [r for r in rows if r < n_win and video_offset + r in video]
    if not rows:
        return torch.zeros(0, 2 * sn.VSHIFT + 1), n_win
    needed = sorted({j for r in rows for j in range(r - sn.VSHIFT, r + sn.VSHIFT + 1) if 0 <= j < n_win})
    a_needed = embedder.audio(sn.compute_mfcc(audio), needed)
    a = torch.zeros(n_win, a_needed.shape[1])  # zero rows are never read: only ``needed`` ones are
    a[needed] = a_needed
    v = torch.zeros(n_win, a_needed.shape[1])
    v[rows] = torch.stack([video[video_offset + r] for r in rows])
    return sn.distance_matrix(v, a, rows), n_win


def _ranges(values: list[int]) -> list[list[int]]:
    """Sorted integers -> [[first, last + 1], ...] runs."""
    out: list[list[int]] = []
    for v in values:
        if out and v == out[-1][1]:
            out[-1][1] = v + 1
        else:
            out.append([v, v + 1])
    return out


def slot_speaking(segments, slot: int) -> bool:
    """Slot j (time j/25) is speaking when s <= j/25 < e for some segment: the half-open rule of
    ``Person.is_speaking``, applied to the 25 fps frame times."""
    t = slot / sn.FPS
    return any(s <= t < e for s, e in segments)


def window_speaking(segments, start: int) -> bool:
    """The window of slots [start, start + 5) lies entirely inside the speaking segments."""
    return start >= 0 and all(slot_speaking(segments, j) for j in range(start, start + sn.FRAMES_PER_WINDOW))


def speaking_slots(segments, n_slots: int) -> np.ndarray:
    """``slot_speaking`` for slots 0 .. n_slots-1."""
    return np.array([slot_speaking(segments, j) for j in range(n_slots)], dtype=bool)


def window_inside(speaking: np.ndarray, start: int) -> bool:
    """``window_speaking`` on a precomputed ``speaking_slots`` array."""
    stop = start + sn.FRAMES_PER_WINDOW
    return 0 <= start and stop <= speaking.size and bool(speaking[start:stop].all())


# --------------------------------------------------------------------------- the metric


@dataclass
class _State:
    ctx: ClipContext
    multi: bool
    frames: _SlotFrames
    grid: sn.GridState
    persons: list[_Tracks]
    pending: FrameData | None = None
    last_time: float | None = None
    n_source_frames: int = 0
    n_slots: int = 0
    max_frames_held: int = 0
    embedder: Any = None
    s3fd_detector: Any = None
    s3fd_tracker: Any = None
    s3fd_tracks: dict = field(default_factory=dict)
    s3fd_done: list = field(default_factory=list)
    error: str | None = None
    lag_started: bool = False  # pipeline "reference"/"lag": the first frame has filled slot 0 too
    reencoder: Any = None  # pipeline "reference": the AVI + JPEG round trip (sync_reference.py)


class SyncC(Metric):
    """Sync-C / Sync-D on single-person clips, Sync-C* on multi-person clips (module docstring)."""

    name = "sync"
    version = "1"
    higher_is_better = True
    needs = frozenset({"frames", "faces", "video_audio", "person_audio"})
    # Sync-D (LSE-D, lower is better): single-person min distance; multi-person, the mean of the
    # speaking people's Sync-D with the same weighting as the value
    secondary = ("sync_d",)
    description = (
        "SyncNet v2 lip-sync confidence: Sync-C (LSE-C) against the clip audio for one person; "
        "Sync-C* (each person vs their own audio track, speaking windows only) for several."
    )

    def __init__(
        self,
        *,
        sync_star_mode: str = "mask",
        sync_star_weighting: str = "person",
        detector: str = "tracks",
        weights_path: str | Path | None = None,
        s3fd_weights_path: str | Path | None = None,
        min_track: int = s3fd.MIN_TRACK,
        min_face_size: float = s3fd.MIN_FACE_SIZE,
        batch_size: int = sn.BATCH_SIZE,
        device: str | None = None,
        model: torch.nn.Module | None = None,
        pipeline: str = "exact",
    ):
        if sync_star_mode not in SYNC_STAR_MODES:
            raise ValueError(f"sync_star_mode must be one of {', '.join(SYNC_STAR_MODES)}, not {sync_star_mode!r}")
        if sync_star_weighting not in WEIGHTINGS:
            raise ValueError(f"sync_star_weighting must be one of {', '.join(WEIGHTINGS)}, not {sync_star_weighting!r}")
        if detector not in DETECTORS:
            raise ValueError(f"detector must be one of {', '.join(DETECTORS)}, not {detector!r}")
        if pipeline not in sref.PIPELINES:
            raise ValueError(f"pipeline must be one of {', '.join(sref.PIPELINES)}, not {pipeline!r}")
        # "exact" (default): decoded frames on the exact 25 fps grid; "reference": syncnet_python's
        # one-frame video lag and its AVI/JPEG re-encodes; "lag": the lag alone (docs/sync.md)
        self.pipeline = pipeline
        self.sync_star_mode = sync_star_mode
        self.sync_star_weighting = sync_star_weighting
        self.detector = detector
        self.weights_path = Path(weights_path) if weights_path else None
        self.s3fd_weights_path = Path(s3fd_weights_path) if s3fd_weights_path else None
        self.min_track = int(min_track)
        self.min_face_size = float(min_face_size)
        self.batch_size = int(batch_size)
        self.device = device
        self._model = model  # an already loaded network (tests, benchmarks)
        self._model_path: Path | None = None
        self._s3fd = None
        self._s3fd_path: Path | None = None

    # ---------------------------------------------------------------- contract: description

    def params(self) -> dict[str, Any]:
        p: dict[str, Any] = {
            "sync_star_mode": self.sync_star_mode,
            "sync_star_weighting": self.sync_star_weighting,
            "detector": self.detector,
            "fps": sn.FPS,
            "fps_policy": "frames selected by timestamp onto the 25 fps grid (libavfilter fps=25, round=near)",
            "vshift": sn.VSHIFT,
            "crop": {
                "size": sn.CROP_SIZE,
                "scale": sn.CROP_SCALE,
                "pad_value": sn.CROP_PAD_VALUE,
                "box_medfilt": sn.BOX_MEDFILT,
                "rows": "cy-s .. cy+1.8s",
                "cols": "cx-1.4s .. cx+1.4s",
                "s": "max(w,h)/2",
                "max_gap": MAX_GAP,
            },
            "mfcc": "python_speech_features.mfcc, int16 scale, 16 kHz mono",
        }
        if self.pipeline != "exact":  # absent for the default, so its cache keys stay as they were
            p["pipeline"] = {
                "name": self.pipeline,
                "video_lag_frames": 1,
                "reencode": (f"mpeg4 q{sref.QSCALE} AVI, then mjpeg q{sref.QSCALE}, decoded by cv2.imdecode"
                             if self.pipeline == "reference" else None),
            }
        if self.detector == "s3fd":
            p["s3fd"] = {
                "scale": s3fd.FACEDET_SCALE,
                "conf_th": s3fd.CONF_TH,
                "nms": s3fd.NMS_TH,
                "track_iou": s3fd.TRACK_IOU,
                "min_track": self.min_track,
                "min_face_size": self.min_face_size,
                "scene_detection": None,
            }
        return p

    def _weights_file(self) -> Path:
        if self._model_path is None:
            if self.weights_path is not None:
                self._model_path = self.weights_path
            else:
                from interactive_eyes.weights import resolve

                self._model_path = resolve("syncnet_v2")
        return self._model_path

    def weights(self) -> dict[str, str]:
        if self._model is not None and self.weights_path is None:
            return {"syncnet_v2": "in-memory model"}
        from interactive_eyes.weights import file_sha256

        out = {"syncnet_v2": file_sha256(self._weights_file())}
        if self.detector == "s3fd":
            path = self.s3fd_weights_path
            if path is None:
                from interactive_eyes.weights import resolve

                path = resolve("s3fd")
            out["s3fd"] = file_sha256(path)
        return out

    def unavailable(self) -> str | None:
        if self._model is not None:
            return None
        try:
            from interactive_eyes.weights import WeightsError, resolve
        except ImportError as exc:  # pragma: no cover - foundation always present
            return f"weights registry unavailable ({exc})"
        if self.weights_path is not None:
            return None if self.weights_path.is_file() else f"{self.weights_path}: syncnet_v2 weights file not found"
        names = ["syncnet_v2"] + (["s3fd"] if self.detector == "s3fd" and self.s3fd_weights_path is None else [])
        for name in names:
            try:
                # downloads once when online (verified, cached); offline it only looks
                resolve(name)
            except WeightsError as exc:
                return str(exc)
        return None

    def check(self, ctx: ClipContext) -> str | None:
        n = ctx.clip.n_people
        if n > 1:
            if self.detector == "s3fd":
                return "the s3fd detector option is for single-person clips (multi-person clips use the shared face tracks)"
            if ctx.data_root is None:
                return "Sync-C* needs each person's own audio track, and no data root is set"
            if not any(p.speaks for p in ctx.clip.people):
                return "nobody speaks in this clip (no speaking segments)"
        elif ctx.info is not None and not getattr(ctx.info, "has_audio", True):
            return f"{ctx.video_path}: no audio stream to score lip sync against"
        return None

    # ---------------------------------------------------------------- model

    def _device(self, ctx: ClipContext) -> str:
        dev = self.device or ctx.device or "cpu"
        if str(dev).startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError(f"device {dev} requested but CUDA is not available")
        return dev

    def _get_model(self, device) -> torch.nn.Module:
        if self._model is None:
            self._model, _ = sn.load_syncnet(self._weights_file(), device=device)
        return self._model.to(device).eval()

    def _get_s3fd(self, device):
        if self._s3fd is None:
            self._s3fd, self._s3fd_path = s3fd.load_s3fd(self.s3fd_weights_path, device=device)
        return self._s3fd

    # ---------------------------------------------------------------- contract: per clip

    def start(self, ctx: ClipContext) -> _State:
        device = self._device(ctx)
        embedder = _Embedder(self._get_model(device), device, self.batch_size)
        multi = ctx.clip.n_people > 1
        frames = _SlotFrames()
        state = _State(ctx=ctx, multi=multi, frames=frames, grid=sn.GridState(sn.FPS), persons=[], embedder=embedder)
        if multi:
            for k, person in enumerate(ctx.clip.people):
                need = self._need_for(state, k)
                state.persons.append(_Tracks(lambda slot, need=need: _Track(slot, frames, embedder, need)))
        elif self.detector == "tracks":
            state.persons.append(_Tracks(lambda slot: _Track(slot, frames, embedder, lambda _s: True)))
        else:
            state.s3fd_tracker = s3fd.IouTracker()
            state.s3fd_detector = self._get_s3fd(device)
        return state

    def _need_for(self, state: _State, k: int) -> Callable[[int], bool]:
        """Which windows person k's score reads: speaking windows (mask/segment) or all (framewise)."""
        if self.sync_star_mode == "framewise":
            return lambda _slot: True
        segments = tuple(state.ctx.clip.people[k].speaking)
        return lambda slot: window_speaking(segments, slot)

    def update(self, state: _State, frame: FrameData) -> None:
        if state.error is not None:
            return
        try:
            if state.last_time is not None and frame.time <= state.last_time:
                raise ValueError(f"frame {frame.index}: time {frame.time:.4f}s does not increase")
            slots = state.grid.push(float(frame.time))
            if state.pending is not None:
                self._place(state, state.pending, slots)
            state.pending = frame
            state.last_time = float(frame.time)
            state.n_source_frames += 1
        except Exception as exc:  # recorded, reported by finish as a failed clip
            state.error = f"{exc.__class__.__name__}: {exc}"
            log.debug("sync: clip %s failed", state.ctx.clip.id, exc_info=True)

    def _place(self, state: _State, frame: FrameData, slots: list[int]) -> None:
        """Put one source frame into its 25 fps slots and feed every track."""
        if self.pipeline != "exact" and slots:
            slots = sref.lagged_slots(slots, first=not state.lag_started)  # the reference's JPEG k = frame k-1
            state.lag_started = True
        if not slots:
            return  # dropped by the 25 fps conversion (source faster than 25 fps)
        if self.pipeline == "reference":
            if state.reencoder is None:
                state.reencoder = sref.Reencoder(frame.rgb.shape[1], frame.rgb.shape[0])
            bgr = state.reencoder.bgr(frame.rgb)  # what cv2.imread reads from the reference's JPEG
            rgb = bgr[..., ::-1]
        else:
            bgr = np.ascontiguousarray(frame.rgb[..., ::-1])  # the network sees BGR (cv2.imread order)
            rgb = frame.rgb
        dets = None
        if state.s3fd_tracker is not None:
            dets = state.s3fd_detector.detect(np.ascontiguousarray(rgb))
        for slot in slots:
            state.frames.put(slot, bgr)
            if state.s3fd_tracker is not None:
                self._feed_s3fd(state, slot, dets)
            else:
                faces = frame.faces
                for k, person in enumerate(state.persons):
                    box = faces[k] if k < len(faces) else None
                    person.observe(slot, None if box is None else box.as_array())
            state.n_slots = slot + 1
            state.max_frames_held = max(state.max_frames_held, len(state.frames))
            state.frames.release_below(self._oldest_needed(state, slot + 1))

    def _feed_s3fd(self, state: _State, slot: int, dets: np.ndarray) -> None:
        embedder = state.embedder
        for t in state.s3fd_tracker.expired(slot):
            tr = state.s3fd_tracks.pop(t.id)
            tr.close()
            state.s3fd_done.append(tr)
        for tid, box in state.s3fd_tracker.update(slot, dets):
            if tid not in state.s3fd_tracks:
                state.s3fd_tracks[tid] = _Track(slot, state.frames, embedder, lambda _s: True)
            state.s3fd_tracks[tid].add(slot, box)

    def _oldest_needed(self, state: _State, default: int) -> int:
        tracks = list(state.s3fd_tracks.values()) + [t for p in state.persons for t in p.open_tracks()]
        olds = [t.oldest_needed() for t in tracks]
        return min([o for o in olds if o is not None] + [default])

    def finish(self, state: _State) -> ClipResult:
        ctx = state.ctx
        try:
            if state.error is None and state.pending is not None:
                fps = float(getattr(ctx.info, "fps", 0) or 0)
                end = state.last_time + (1.0 / fps if fps > 0 else 1.0 / sn.FPS)
                self._place(state, state.pending, state.grid.finish(end))
                state.pending = None
            if state.error is not None:
                return ClipResult.failed(self.name, state.error)
            if state.n_slots == 0:
                return ClipResult.failed(self.name, "no frames were decoded")
            if state.s3fd_tracker is not None:
                for tr in state.s3fd_tracks.values():
                    tr.close()
                    state.s3fd_done.append(tr)
                state.s3fd_tracks = {}
                result = self._finish_single(state, sorted(state.s3fd_done, key=lambda t: t.start))
            elif state.multi:
                result = self._finish_multi(state, [p.close() for p in state.persons])
            else:
                result = self._finish_single(state, state.persons[0].close())
            result.details["n_video_windows_embedded"] = state.embedder.n_video
            result.details["n_audio_windows_embedded"] = state.embedder.n_audio
            return result
        except Exception as exc:
            log.debug("sync: clip %s failed", ctx.clip.id, exc_info=True)
            return ClipResult.failed(self.name, f"{exc.__class__.__name__}: {exc}")
        finally:
            state.frames.release_below(1 << 62)

    # ---------------------------------------------------------------- finishing

    def _common_details(self, state: _State) -> dict[str, Any]:
        info = state.ctx.info
        return {
            "source_fps": float(getattr(info, "fps", 0) or 0),
            "n_source_frames": state.n_source_frames,
            "n_slots_25fps": state.n_slots,
            "max_frames_held": state.max_frames_held,
            "detector": self.detector if not state.multi else "tracks",
            "pipeline": self.pipeline,
            "weights_sha256": self._weights_digest(),
        }

    def _weights_digest(self) -> str | None:
        try:
            return self.weights().get("syncnet_v2")
        except Exception:  # recorded as unknown rather than failing a scored clip
            return None

    def _finish_single(self, state: _State, tracks: list[_Track]) -> ClipResult:
        audio = state.ctx.video_audio(sn.SAMPLE_RATE, dtype="int16")
        details = self._common_details(state)
        details["audio"] = "video"
        rows_out = []
        best = None
        for t in tracks:
            rec: dict[str, Any] = {
                "start_slot": t.start,
                "n_slots": t.n_slots,
                "n_detections": t.n_dets,
                "mean_face_size": round(t.mean_face_size(), 2),
            }
            if self.detector == "s3fd":
                if t.n_dets <= self.min_track:
                    rec["dropped"] = f"{t.n_dets} detections <= min_track {self.min_track}"
                elif t.mean_face_size() <= self.min_face_size:
                    rec["dropped"] = f"mean face size {t.mean_face_size():.1f} px <= min_face_size {self.min_face_size:g}"
            if "dropped" not in rec:
                a = _slots_audio(audio, t.start, t.end)
                d, n_win = _score_rows(state.embedder, t.embeddings, a, t.n_slots, list(range(t.n_slots)))
                if d.shape[0] == 0:
                    rec["dropped"] = f"too short: {t.n_slots} frames give no window"
                else:
                    s = sn.score_distances(d)
                    rec.update(s.as_dict())
                    if best is None or t.n_slots > best[0].n_slots:
                        best = (t, s)
            rows_out.append(rec)
        details["tracks"] = rows_out
        if best is None:
            why = "no face track" if not tracks else "no usable face track (" + "; ".join(r.get("dropped", "") for r in rows_out) + ")"
            return ClipResult.failed(self.name, why, **details)
        t, s = best
        details.update(s.as_dict())
        details["track"] = rows_out[tracks.index(t)]["start_slot"]
        return ClipResult(metric=self.name, value=s.confidence, details=details)

    def _finish_multi(self, state: _State, per_person: list[list[_Track]]) -> ClipResult:
        ctx = state.ctx
        details = self._common_details(state)
        details.update(
            audio="person",
            sync_star_mode=self.sync_star_mode,
            sync_star_weighting=self.sync_star_weighting,
            window_rule="window [i, i+5) kept when all five 25 fps slot times j/25 satisfy s <= j/25 < e for a speaking segment",
        )
        people: dict[str, Any] = {}
        per_value: dict[str, float | None] = {}
        values, weights, dists, failures = [], [], [], []
        for k, (person, tracks) in enumerate(zip(ctx.clip.people, per_person)):
            need = self._need_for(state, k)
            n_speaking_windows = sum(need(j) for j in range(max(0, state.n_slots - sn.FRAMES_PER_WINDOW + 1))) \
                if self.sync_star_mode != "framewise" else None
            rec: dict[str, Any] = {"speaks": person.speaks, "tracks": [[t.start, t.end] for t in tracks]}
            if not person.speaks:
                rec["reason"] = "does not speak"
                per_value[person.role] = None
                people[person.role] = rec
                continue
            audio = ctx.person_audio(k, sn.SAMPLE_RATE, dtype="int16")
            speaking = speaking_slots(person.speaking, state.n_slots + sn.FRAMES_PER_WINDOW)
            res = self._score_person(state, tracks, audio, speaking)
            rec.update(res)
            if self.sync_star_mode == "mask":
                rec["n_speaking_windows"] = n_speaking_windows
            if rec.get("value") is None:
                failures.append(f"{person.role}: {rec.get('reason', 'no score')}")
            else:
                values.append(rec["value"])
                weights.append(rec["n_windows"])
                dists.append(rec["sync_d"])
            per_value[person.role] = rec.get("value")
            people[person.role] = rec
        details["people"] = people
        if failures:
            return ClipResult(
                metric=self.name,
                status=STATUS_FAILED,
                reason=" ".join(("speaking person not scored: " + "; ".join(failures)).split()),
                per_person=per_value,
                details=details,
            )
        if not values:
            return ClipResult.failed(self.name, "nobody speaks in this clip", **details)
        w = weights if self.sync_star_weighting == "window" else None
        value = float(np.average(values, weights=w))
        details["sync_d"] = float(np.average(dists, weights=w))
        return ClipResult(metric=self.name, value=value, per_person=per_value, details=details)

    def _score_person(self, state: _State, tracks: list[_Track], audio: np.ndarray, speaking: np.ndarray) -> dict:
        emb = state.embedder
        mode = self.sync_star_mode
        if mode == "segment":
            return self._score_segments(emb, tracks, audio, speaking)
        all_rows, kept_global, fconf_kept, track_dists = [], [], [], []
        for t in tracks:
            a = _slots_audio(audio, t.start, t.end)
            n_win = sn.n_windows(t.n_slots, len(a))
            kept = [w for w in range(n_win) if window_inside(speaking, t.start + w)]
            if mode == "mask":
                d, _ = _score_rows(emb, t.embeddings, a, t.n_slots, kept)
                all_rows.append(d)
            else:  # framewise: the track's own offset search over all its windows, conf per window
                d, _ = _score_rows(emb, t.embeddings, a, t.n_slots, list(range(n_win)))
                if d.shape[0] == 0:
                    continue
                score = sn.score_distances(d)
                fconf = sn.framewise_confidence(d, score)
                fconf_kept.extend(float(fconf[w]) for w in kept)
                if kept:
                    track_dists.append((score.min_dist, len(kept)))
            kept_global.extend(t.start + w for w in kept)
        out: dict[str, Any] = {"kept_windows": _ranges(kept_global), "n_windows": len(kept_global)}
        if not kept_global:
            out["value"] = None
            out["reason"] = "face not tracked in any complete 5-frame window inside the speaking segments"
            return out
        if mode == "mask":
            s = sn.score_distances(torch.cat(all_rows))
            out.update(s.as_dict())
            out["value"] = s.confidence
        else:  # framewise: Sync-D of each track's own offset search, weighted by its kept windows
            out["value"] = float(np.mean(fconf_kept))
            out["sync_c"] = out["value"]
            out["sync_d"] = float(np.average([d for d, _ in track_dists], weights=[n for _, n in track_dists]))
        out["n_windows"] = len(kept_global)
        return out

    def _score_segments(self, emb: _Embedder, tracks: list[_Track], audio: np.ndarray, speaking: np.ndarray) -> dict:
        """segment mode: cut each speaking run of each track into its own clip (crops and audio),
        score it as the reference scores a clip, and take the mean weighted by windows."""
        segs = []
        kept_global = []
        for t in tracks:
            sp = speaking[t.start : t.end]
            j = 0
            while j < sp.size:
                if not sp[j]:
                    j += 1
                    continue
                k = j
                while k < sp.size and sp[k]:
                    k += 1
                a = _slots_audio(audio, t.start + j, t.start + k)
                n_win = sn.n_windows(k - j, len(a))
                if n_win >= 1:
                    d, _ = _score_rows(emb, t.embeddings, a, k - j, list(range(n_win)), video_offset=j)
                    s = sn.score_distances(d)
                    segs.append({"start_slot": t.start + j, "n_slots": k - j, **s.as_dict()})
                    kept_global.extend(t.start + j + w for w in range(n_win))
                j = k
        out: dict[str, Any] = {"segments": segs, "kept_windows": _ranges(kept_global), "n_windows": len(kept_global)}
        if not segs:
            out["value"] = None
            out["reason"] = "no speaking segment with a tracked face long enough for one window (6 frames)"
            return out
        w = np.array([s["n_windows"] for s in segs], dtype=float)
        out["value"] = float(np.average([s["sync_c"] for s in segs], weights=w))
        out["sync_c"] = out["value"]
        out["sync_d"] = float(np.average([s["sync_d"] for s in segs], weights=w))
        return out
