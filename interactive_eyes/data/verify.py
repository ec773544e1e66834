"""Check a data root against its manifest: the files, and the speaking segments against a VAD.

``verify_files`` checks every file the manifest names: each audio track (WAV as released, or a
lossless FLAC copy) is present, decodes, has the manifest's PCM hash (sha256 of the decoded
int16 samples, the same for WAV and FLAC) and its length (within ``DURATION_TOLERANCE`` of the
manifest's); the released annotation file and ground-truth videos are checked by file sha256
when the release pins one, and by decoding otherwise.

``check_segments_vad`` measures how well the annotated speaking segments match speech found by
Silero VAD on each person's own track (tracks are near-silent outside their person's turns,
so a turn boundary is a VAD boundary). Which boundaries count (``annotated_boundaries``):

* every start and every end of a speaking segment, except a start at t = 0: a person talking
  when the clip begins has no onset inside the clip, and the VAD's first onset there only says
  where the first syllable is;
* ends at the clip's end are counted (the VAD ends there too, at the end of the audio);
* a person who never speaks (released as ``[[0.0, 0.0]]``) has no boundaries.

On InteractiveEyes that gives 77 boundaries, the count in the release notes (SOURCE.md). Each
counts the distance to the nearest boundary (start or end) of the VAD's speech segments on the
same track. The segments are compared twice: as the manifest reads them (``seconds.frames``
timecodes at 30 fps) and as decimal seconds (the released scoring script's reading): the gap
between the two figures is the evidence for the timecode reading (docs/interactive_eyes.md).
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from interactive_eyes.data.manifest import Benchmark, Clip, Person
from interactive_eyes.data.paths import PathEscapeError, audio_candidates, confined
from interactive_eyes.data.release import RELEASED_VIDEO_SHA256
from interactive_eyes.download import sha256_file

# Track length vs the manifest: the bound (±0.05 s). A truncated or padded track, or a
# track of the wrong clip, is off by far more; resampled/re-encoded copies are within a few ms.
DURATION_TOLERANCE = 0.05
# The annotations pass when the median boundary error is at most this (issue 2: "on the shared
# data the median must be <= 0.05 s"): one and a half 30 fps frames, while the decimal-seconds
# misreading of the same values sits near 0.4 s.
VAD_MEDIAN_TOLERANCE = 0.05
# Silero VAD runs at 16 kHz (its two supported rates are 8 and 16 kHz).
VAD_SAMPLE_RATE = 16000



# --------------------------------------------------------------------------- files


@dataclass(frozen=True)
class FileCheck:
    """One file's verdict. ``status``: ok | missing | corrupt | mismatch | unsafe (path outside the root) |
    absent (optional file not there)."""

    clip: str | None
    kind: str  # audio | annotation | video
    relpath: str
    status: str
    reason: str = ""
    path: str | None = None  # the file actually checked (WAV or FLAC)
    duration: float | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "absent")

    def line(self) -> str:
        """One line: ``<path>: <reason>``."""
        return f"{self.path or self.relpath}: {self.reason or self.status}"


@dataclass
class FilesReport:
    root: str
    checks: list[FileCheck] = field(default_factory=list)

    @property
    def failures(self) -> list[FileCheck]:
        return [c for c in self.checks if not c.ok]

    @property
    def ok(self) -> bool:
        return not self.failures

    def of_kind(self, kind: str) -> list[FileCheck]:
        return [c for c in self.checks if c.kind == kind]


def check_track(root: str | os.PathLike, clip: Clip, person: Person) -> FileCheck:
    """Presence, decodability, PCM hash and length of one person's audio track."""
    from interactive_eyes.media.audio import pcm_sha256
    from interactive_eyes.media.errors import MediaError

    try:
        cands = audio_candidates(root, person.audio)
    except PathEscapeError as exc:  # only a hand-built Clip gets here: the loader refuses such paths
        return FileCheck(clip.id, "audio", person.audio, "unsafe", str(exc), str(root))
    path = next((c for c in cands if c.is_file()), None)
    if path is None:
        return FileCheck(clip.id, "audio", person.audio, "missing",
                         f"audio track not found (looked for {', '.join(c.name for c in cands)})", str(cands[0]))
    try:
        digest, info = pcm_sha256(path)
    except MediaError as exc:
        return FileCheck(clip.id, "audio", person.audio, "corrupt", exc.reason, str(path))
    expected = (
        person.n_samples / person.sample_rate if person.n_samples and person.sample_rate else clip.duration
    )
    if abs(info.duration - expected) > DURATION_TOLERANCE:
        return FileCheck(clip.id, "audio", person.audio, "mismatch",
                         f"duration {info.duration:.3f} s, manifest {expected:.3f} s "
                         f"(tolerance {DURATION_TOLERANCE} s): truncated or wrong file", str(path), info.duration)
    if person.sample_rate and info.sample_rate != person.sample_rate:
        return FileCheck(clip.id, "audio", person.audio, "mismatch",
                         f"sample rate {info.sample_rate} Hz, manifest {person.sample_rate} Hz", str(path), info.duration)
    if person.pcm_sha256 and digest != person.pcm_sha256:
        return FileCheck(clip.id, "audio", person.audio, "mismatch",
                         f"PCM sha256 {digest[:12]}..., manifest {person.pcm_sha256[:12]}...: samples differ "
                         "from the release", str(path), info.duration)
    return FileCheck(clip.id, "audio", person.audio, "ok", "", str(path), info.duration)


def check_annotation(root: str | os.PathLike, benchmark: Benchmark) -> FileCheck | None:
    """The released annotation file (its segments are in the manifest; the file is kept as provenance)."""
    rel = benchmark.source.get("annotation_file")
    if not rel:
        return None
    try:
        path = confined(root, rel, "annotation file")
    except PathEscapeError as exc:
        return FileCheck(None, "annotation", rel, "unsafe", str(exc), str(root))
    if not path.is_file():
        return FileCheck(None, "annotation", rel, "missing", "released annotation file not found", str(path))
    want = benchmark.source.get("annotation_sha256")
    if want:
        got = sha256_file(path)
        if got != want:
            return FileCheck(None, "annotation", rel, "mismatch",
                             f"sha256 {got[:12]}..., release {want[:12]}...", str(path))
    return FileCheck(None, "annotation", rel, "ok", "", str(path))


def check_video(root: str | os.PathLike, clip: Clip) -> FileCheck | None:
    """A clip's ground-truth video: optional; pinned by sha256 when released, else it must decode."""
    from interactive_eyes.media.errors import MediaError
    from interactive_eyes.media.video import probe

    if not clip.video:
        return None
    try:
        path = confined(root, clip.video, "video")
    except PathEscapeError as exc:
        return FileCheck(clip.id, "video", clip.video, "unsafe", str(exc), str(root))
    if not path.is_file():
        return FileCheck(clip.id, "video", clip.video, "absent", "not fetched (optional)", str(path))
    want = RELEASED_VIDEO_SHA256.get(clip.video)
    if want:
        got = sha256_file(path)
        if got != want:
            return FileCheck(clip.id, "video", clip.video, "mismatch",
                             f"sha256 {got[:12]}..., release {want[:12]}...", str(path))
    try:
        info = probe(path)
    except MediaError as exc:
        return FileCheck(clip.id, "video", clip.video, "corrupt", exc.reason, str(path))
    if not want:
        # a clip cut by `fetch --videos` holds floor(duration * fps) frames: within one frame of
        # the audio, plus the file tolerance (the released interact_11.mp4 is pinned by hash instead:
        # it is 8.54 s against 8.597 s of audio)
        slack = DURATION_TOLERANCE + (1.0 / info.fps if info.fps else 0.0)
        if abs(info.duration - clip.duration) > slack:
            return FileCheck(clip.id, "video", clip.video, "mismatch",
                             f"duration {info.duration:.3f} s, clip {clip.duration:.3f} s "
                             f"(tolerance {slack:.3f} s): truncated or wrong video", str(path), info.duration)
    return FileCheck(clip.id, "video", clip.video, "ok", "", str(path), info.duration)


def verify_files(benchmark: Benchmark, root: str | os.PathLike, clips: Sequence[str] | None = None) -> FilesReport:
    """Check every file of ``benchmark`` (or of ``clips``) under ``root``; never raises for bad files."""
    report = FilesReport(root=str(root))
    ann = check_annotation(root, benchmark)
    if ann is not None:
        report.checks.append(ann)
    for clip in select_clips(benchmark, clips):
        for person in clip.people:
            report.checks.append(check_track(root, clip, person))
        video = check_video(root, clip)
        if video is not None:
            report.checks.append(video)
    return report


def select_clips(benchmark: Benchmark, clips: Sequence[str] | None) -> list[Clip]:
    """The requested clips in manifest order (``KeyError`` with a did-you-mean for an unknown id)."""
    if not clips:
        return list(benchmark.clips)
    wanted = [benchmark.clip(c).id for c in clips]
    return [c for c in benchmark.clips if c.id in wanted]


# --------------------------------------------------------------------------- segments vs VAD


def load_vad():
    """Silero VAD's bundled TorchScript model (the ``silero-vad`` wheel ships it; no download)."""
    from silero_vad import load_silero_vad

    with warnings.catch_warnings():
        # torch>=2.9 deprecates torch.jit.load, which silero-vad uses to load its bundled model
        warnings.simplefilter("ignore", FutureWarning)
        # silero-vad 6 locates its model with importlib.resources.path (deprecated, still works)
        warnings.simplefilter("ignore", DeprecationWarning)
        return load_silero_vad()


def detect_speech(path: str | os.PathLike, model=None) -> list[tuple[float, float]]:
    """Speech segments (seconds, at the VAD's own resolution) of one track, by Silero VAD.

    The track is decoded to 16 kHz mono (channel mean) by ``load_audio``; Silero runs with its
    default settings (threshold 0.5, 250 ms minimum speech, 100 ms minimum silence, 30 ms pad).
    Times are taken in samples and divided by the rate: ``return_seconds`` would round them to
    0.1 s, which is coarser than the errors being measured.
    """
    import torch
    from silero_vad import get_speech_timestamps

    from interactive_eyes.media.audio import load_audio

    model = model if model is not None else load_vad()
    audio = load_audio(path, VAD_SAMPLE_RATE)
    with torch.no_grad():
        stamps = get_speech_timestamps(torch.from_numpy(audio), model, sampling_rate=VAD_SAMPLE_RATE)
    return [(d["start"] / VAD_SAMPLE_RATE, d["end"] / VAD_SAMPLE_RATE) for d in stamps]


def annotated_boundaries(segments: Iterable[tuple[float, float]]) -> list[float]:
    """Turn boundaries of one person's speaking segments: every start and end except starts at 0.

    Empty segments (``[0.0, 0.0]``: never speaks) have none. See the module docstring for why.
    """
    out: list[float] = []
    for s, e in segments:
        if e <= s:
            continue
        if s > 0:
            out.append(float(s))
        out.append(float(e))
    return out


def boundary_errors(boundaries: Sequence[float], detected: Sequence[tuple[float, float]],
                    resolution: float | None = None) -> list[float]:
    """Distance from each annotated boundary to the nearest start or end of a detected segment.

    ``resolution``: round detected times to this step first (e.g. 0.1, what Silero's
    ``return_seconds`` gives) — only to compare with figures measured that way. A track with no
    detected speech gives ``inf`` for each boundary (it cannot match anything).
    """
    det = np.array([t for seg in detected for t in seg], dtype=np.float64)
    if resolution:
        det = np.round(det / resolution) * resolution
    if det.size == 0:
        return [math.inf for _ in boundaries]
    return [float(np.min(np.abs(det - b))) for b in boundaries]


def decimal_reading(person: Person) -> list[tuple[float, float]]:
    """The released values read as decimal seconds (what the released scoring script does)."""
    raw = person.speaking_raw if person.speaking_raw is not None else person.speaking
    return [(float(s), float(e)) for s, e in raw]


@dataclass(frozen=True)
class ClipVad:
    clip: str
    boundaries: int
    errors: tuple[float, ...]  # timecode reading (the manifest's seconds)
    errors_decimal: tuple[float, ...]  # released values read as decimal seconds


@dataclass(frozen=True)
class ErrorSummary:
    n: int
    median: float
    p90: float
    max: float

    @classmethod
    def of(cls, errors: Sequence[float]) -> "ErrorSummary":
        e = np.asarray(errors, dtype=np.float64)
        if e.size == 0:
            return cls(0, math.nan, math.nan, math.nan)
        return cls(int(e.size), float(np.median(e)), float(np.percentile(e, 90)), float(e.max()))


@dataclass
class VadReport:
    rows: list[ClipVad]
    tolerance: float = VAD_MEDIAN_TOLERANCE

    @property
    def summary(self) -> ErrorSummary:
        return ErrorSummary.of([x for r in self.rows for x in r.errors])

    @property
    def summary_decimal(self) -> ErrorSummary:
        return ErrorSummary.of([x for r in self.rows for x in r.errors_decimal])

    @property
    def ok(self) -> bool:
        s = self.summary
        return s.n > 0 and s.median <= self.tolerance


def detect_all(benchmark: Benchmark, root: str | os.PathLike, clips: Sequence[str] | None = None,
               model=None) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """Silero VAD segments of every track: ``{(clip_id, role): [(start, end), ...]}`` (model loaded once)."""
    from interactive_eyes.data.paths import find_audio

    model = model if model is not None else load_vad()
    return {
        (clip.id, p.role): detect_speech(find_audio(root, p.audio), model)
        for clip in select_clips(benchmark, clips)
        for p in clip.people
    }


def check_segments_vad(
    benchmark: Benchmark,
    root: str | os.PathLike | None = None,
    clips: Sequence[str] | None = None,
    *,
    detections: dict[tuple[str, str], list[tuple[float, float]]] | None = None,
    resolution: float | None = None,
    tolerance: float = VAD_MEDIAN_TOLERANCE,
) -> VadReport:
    """Compare every clip's annotated turn boundaries with Silero VAD on each person's own track.

    ``detections``: precomputed ``detect_all`` output (else computed from ``root``).
    """
    if detections is None:
        if root is None:
            raise ValueError("check_segments_vad needs a data root or precomputed detections")
        detections = detect_all(benchmark, root, clips)
    rows = []
    for clip in select_clips(benchmark, clips):
        errs: list[float] = []
        errs_dec: list[float] = []
        n = 0
        for p in clip.people:
            det = detections[(clip.id, p.role)]
            b = annotated_boundaries(p.speaking)
            n += len(b)
            errs += boundary_errors(b, det, resolution)
            errs_dec += boundary_errors(annotated_boundaries(decimal_reading(p)), det, resolution)
        rows.append(ClipVad(clip.id, n, tuple(errs), tuple(errs_dec)))
    return VadReport(rows, tolerance)


# --------------------------------------------------------------------------- report


def format_report(files: FilesReport, vad: VadReport | None, benchmark: Benchmark) -> str:
    """The per-clip table and the summary lines printed by ``ie-bench data verify``."""
    import pandas as pd

    by_clip: dict[str, list[FileCheck]] = {}
    for c in files.checks:
        if c.clip is not None:
            by_clip.setdefault(c.clip, []).append(c)
    vad_rows = {r.clip: r for r in vad.rows} if vad is not None else {}
    records = []
    for clip in benchmark.clips:
        if clip.id not in by_clip:
            continue
        tracks = [c for c in by_clip[clip.id] if c.kind == "audio"]
        video = next((c for c in by_clip[clip.id] if c.kind == "video"), None)
        rec = {
            "clip": clip.id,
            "duration_s": f"{clip.duration:.3f}",
            "tracks_ok": f"{sum(c.ok for c in tracks)}/{len(tracks)}",
            "video": "-" if video is None or video.status == "absent" else ("ok" if video.ok else video.status),
        }
        if vad is not None:
            r = vad_rows.get(clip.id)
            rec["boundaries"] = r.boundaries if r else "-"
            rec["median_err_s"] = _fmt(np.median(r.errors)) if r and r.errors else "-"
            rec["max_err_s"] = _fmt(max(r.errors)) if r and r.errors else "-"
            rec["median_err_decimal_s"] = _fmt(np.median(r.errors_decimal)) if r and r.errors_decimal else "-"
        records.append(rec)
    lines = [pd.DataFrame.from_records(records).to_string(index=False)] if records else []

    tracks = files.of_kind("audio")
    present = [c for c in tracks if c.status != "missing"]
    hashed = [c for c in tracks if c.status == "ok"]
    videos = [c for c in files.of_kind("video") if c.status != "absent"]
    lines.append("")
    lines.append(
        f"files: {len({c.clip for c in tracks})} clips, {len(tracks)} tracks: {len(present)} present, "
        f"{len(hashed)} with PCM hash and duration matching the manifest; "
        f"ground-truth videos: {len(videos)} present, {sum(c.ok for c in videos)} ok"
    )
    for c in files.of_kind("annotation"):
        lines.append(f"annotation {c.relpath}: {'sha256 matches the release' if c.ok else c.reason}")
    if vad is not None:
        s, d = vad.summary, vad.summary_decimal
        verdict = "ok" if vad.ok else "FAIL"
        lines.append(
            f"segments vs Silero VAD (timecode reading, 30 fps): {s.n} boundaries, distance to nearest VAD boundary "
            f"median {_fmt(s.median)} s, p90 {_fmt(s.p90)} s, max {_fmt(s.max)} s "
            f"[{verdict}: median <= {vad.tolerance} s]"
        )
        lines.append(
            f"same values read as decimal seconds (released scoring script): {d.n} boundaries, "
            f"median {_fmt(d.median)} s, p90 {_fmt(d.p90)} s, max {_fmt(d.max)} s"
        )
    return "\n".join(lines)


def _fmt(x: float) -> str:
    return "inf" if math.isinf(x) else ("nan" if math.isnan(x) else f"{x:.3f}")
