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

Where the steps live: 1 and the ``pipeline`` option in ``sync_reference.py``, 2-4 in
``sync_tracks.py``, 5 and the Sync-C* modes in ``sync_score.py``; this module is the metric class.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from interactive_eyes.metrics import s3fd
from interactive_eyes.metrics import sync_reference as sref
from interactive_eyes.metrics import syncnet as sn
from interactive_eyes.metrics.base import STATUS_FAILED, ClipContext, ClipResult, FrameData, Metric
from interactive_eyes.metrics.sync_score import (  # noqa: F401  (the rest re-exported: public names of the metric)
    needed_windows,
    score_people,
    score_tracks,
    slot_speaking,
    speaking_slots,
    window_inside,
    window_speaking,
)
from interactive_eyes.metrics.sync_tracks import (  # noqa: F401  (MIN_TRACK_SLOTS re-exported)
    MAX_GAP,
    MIN_TRACK_SLOTS,
    Embedder,
    S3fdTracks,
    SlotFrames,
    Track,
    Tracks,
)

log = logging.getLogger(__name__)
_LOAD_LOCK = threading.Lock()

SYNC_STAR_MODES = ("mask", "segment", "framewise")
WEIGHTINGS = ("person", "window")
DETECTORS = ("tracks", "s3fd")


# --------------------------------------------------------------------------- the metric


@dataclass
class _State:
    ctx: ClipContext
    multi: bool
    frames: SlotFrames
    grid: sn.GridState
    persons: list[Tracks]
    pending: FrameData | None = None
    last_time: float | None = None
    n_source_frames: int = 0
    n_slots: int = 0
    max_frames_held: int = 0
    embedder: Any = None
    s3fd: S3fdTracks | None = None  # detector "s3fd": the clip's own detections, linked by IoU
    error: str | None = None
    pipeline: sref.FramePipeline | None = None  # lag and re-encodes of pipeline "reference"/"lag"


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
        with _LOAD_LOCK:  # clips started together (--clips-in-flight) load one network, not one each
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
        embedder = Embedder(self._get_model(device), device, self.batch_size)
        multi = ctx.clip.n_people > 1
        frames = SlotFrames()
        state = _State(ctx=ctx, multi=multi, frames=frames, grid=sn.GridState(sn.FPS), persons=[], embedder=embedder,
                       pipeline=sref.FramePipeline(self.pipeline))
        if multi:
            for k, person in enumerate(ctx.clip.people):
                need = self._need_for(state, k)
                state.persons.append(Tracks(lambda slot, need=need: Track(slot, frames, embedder, need)))
        elif self.detector == "tracks":
            state.persons.append(Tracks(lambda slot: Track(slot, frames, embedder, lambda _s: True)))
        else:
            state.s3fd = S3fdTracks(self._get_s3fd(device), frames, embedder)
        return state

    def _need_for(self, state: _State, k: int) -> Callable[[int], bool]:
        return needed_windows(self.sync_star_mode, state.ctx.clip.people[k].speaking)

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
        slots = state.pipeline.slots(slots)
        if not slots:
            return  # dropped by the 25 fps conversion (source faster than 25 fps)
        bgr, rgb = state.pipeline.pixels(frame.rgb)
        dets = state.s3fd.detect(rgb) if state.s3fd is not None else None
        for slot in slots:
            state.frames.put(slot, bgr)
            if state.s3fd is not None:
                state.s3fd.observe(slot, dets)
            else:
                faces = frame.faces
                for k, person in enumerate(state.persons):
                    box = faces[k] if k < len(faces) else None
                    person.observe(slot, None if box is None else box.as_array())
            state.n_slots = slot + 1
            state.max_frames_held = max(state.max_frames_held, len(state.frames))
            state.frames.release_below(self._oldest_needed(state, slot + 1))

    def _oldest_needed(self, state: _State, default: int) -> int:
        tracks = (state.s3fd.open_tracks() if state.s3fd is not None else []) + [
            t for p in state.persons for t in p.open_tracks()
        ]
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
            if state.s3fd is not None:
                result = self._finish_single(state, state.s3fd.close())
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

    def _finish_single(self, state: _State, tracks: list[Track]) -> ClipResult:
        audio = state.ctx.video_audio(sn.SAMPLE_RATE, dtype="int16")
        details = self._common_details(state)
        details["audio"] = "video"
        limits = (self.min_track, self.min_face_size) if self.detector == "s3fd" else None
        rows_out, best = score_tracks(state.embedder, tracks, audio, limits)
        details["tracks"] = rows_out
        if best is None:
            why = "no face track" if not tracks else "no usable face track (" + "; ".join(r.get("dropped", "") for r in rows_out) + ")"
            return ClipResult.failed(self.name, why, **details)
        t, s = best
        details.update(s.as_dict())
        details["track"] = rows_out[tracks.index(t)]["start_slot"]
        return ClipResult(metric=self.name, value=s.confidence, details=details)

    def _finish_multi(self, state: _State, per_person: list[list[Track]]) -> ClipResult:
        ctx = state.ctx
        details = self._common_details(state)
        details.update(
            audio="person",
            sync_star_mode=self.sync_star_mode,
            sync_star_weighting=self.sync_star_weighting,
            window_rule="window [i, i+5) kept when all five 25 fps slot times j/25 satisfy s <= j/25 < e for a speaking segment",
        )
        people, per_value, failures, value, sync_d = score_people(
            self.sync_star_mode,
            self.sync_star_weighting,
            state.embedder,
            list(zip(ctx.clip.people, per_person)),
            state.n_slots,
            lambda k: ctx.person_audio(k, sn.SAMPLE_RATE, dtype="int16"),
        )
        details["people"] = people
        if failures:
            return ClipResult(
                metric=self.name,
                status=STATUS_FAILED,
                reason=" ".join(("speaking person not scored: " + "; ".join(failures)).split()),
                per_person=per_value,
                details=details,
            )
        if value is None:
            return ClipResult.failed(self.name, "nobody speaks in this clip", **details)
        details["sync_d"] = sync_d
        return ClipResult(metric=self.name, value=value, per_person=per_value, details=details)
