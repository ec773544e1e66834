"""Check a data root against its manifest: the files, and the speaking segments against a VAD.

``verify_files`` checks every file the manifest names: each audio track (WAV as released, or a
lossless FLAC copy) is present, decodes, has the manifest's PCM hash (sha256 of the decoded
int16 samples, the same for WAV and FLAC) and its length (within ``DURATION_TOLERANCE`` of the
manifest's); the released annotation file and ground-truth videos are checked by file sha256
when the release pins one, and by decoding otherwise.

``check_segments_vad`` (in ``verify_vad.py``, re-exported here) compares the annotated speaking
segments with Silero VAD on each person's own track; its docstring says which boundaries count.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from interactive_eyes.data.manifest import Benchmark, Clip, Person
from interactive_eyes.data.paths import PathEscapeError, audio_candidates, confined
from interactive_eyes.data.release import RELEASED_VIDEO_SHA256
from interactive_eyes.data.select import select_clips
from interactive_eyes.data.verify_vad import (  # noqa: F401  (re-exported: ``verify`` is the module the CLI and docs name)
    VAD_MEDIAN_TOLERANCE,
    VAD_SAMPLE_RATE,
    ClipVad,
    ErrorSummary,
    VadReport,
    annotated_boundaries,
    boundary_errors,
    check_segments_vad,
    decimal_reading,
    detect_all,
    detect_speech,
    load_vad,
)
from interactive_eyes.download import sha256_file

# Track length vs the manifest: the bound (±0.05 s). A truncated or padded track, or a
# track of the wrong clip, is off by far more; resampled/re-encoded copies are within a few ms.
DURATION_TOLERANCE = 0.05



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
