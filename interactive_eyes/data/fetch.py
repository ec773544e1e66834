"""Fetch a benchmark's data into its data root: the released files (here) and the YouTube frames/videos.

Released files (``fetch_release``): every audio track, the annotation file and the released
ground-truth video, as raw files of the source repository at the pinned commit (the manifest's
``source``), each checked against its release sha256. Downloads go through
``interactive_eyes.download.download`` (a ``.part`` file, resumed if present, verified, then
renamed onto the target), so a target is either absent or complete and verified. A file already
present and verified is skipped: a released WAV by its file sha256, a lossless FLAC (or WAV)
copy by the manifest's PCM hash. A download never writes through a symlink out of the root
(``paths.write_target``).

The YouTube steps (``fetch_youtube``, ``--frames``/``--videos``) live in ``data.youtube``; they
and the report types (``data.fetch_items``) are importable from here as well, for the CLI.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from interactive_eyes.data.fetch_items import FetchError, FetchItem, FetchReport, MissingExtraError
from interactive_eyes.data.manifest import Benchmark
from interactive_eyes.data.release import RELEASED_VIDEO_SHA256
from interactive_eyes.data.verify import select_clips

RAW_URL = "https://raw.githubusercontent.com/{repository}/{commit}/{folder}/{path}"

# Retries of one interrupted download (each resumes from the bytes on disk), and the first wait.
RETRIES = 3
BACKOFF = 1.0


# --------------------------------------------------------------------------- the release


@dataclass(frozen=True)
class PlannedFile:
    relpath: str  # under the data root, and under the release folder
    url: str
    sha256: str  # of the released file
    kind: str  # annotation | audio | video
    clip: str | None = None
    pcm_sha256: str | None = None  # audio: a lossless copy with these samples is accepted too


def release_url(benchmark: Benchmark, relpath: str) -> str:
    """Raw URL of a released file at the manifest's pinned commit."""
    src = benchmark.source
    missing = [k for k in ("repository", "commit", "folder") if not src.get(k)]
    if missing:
        raise FetchError(f"{benchmark.path or benchmark.name}: source has no {', '.join(missing)}: "
                         "nothing to download from")
    return RAW_URL.format(repository=src["repository"], commit=src["commit"], folder=src["folder"], path=relpath)


def plan_release(benchmark: Benchmark, clips: Sequence[str] | None = None) -> list[PlannedFile]:
    """Every released file the (selected) clips need, with its URL and sha256."""
    plan = []
    ann = benchmark.source.get("annotation_file")
    if ann and benchmark.source.get("annotation_sha256"):
        plan.append(PlannedFile(ann, release_url(benchmark, ann), benchmark.source["annotation_sha256"], "annotation"))
    for clip in select_clips(benchmark, clips):
        for p in clip.people:
            if not p.audio_sha256:
                raise FetchError(f"{benchmark.path or benchmark.name}: clip {clip.id}: {p.role} track has no "
                                 "audio_sha256: cannot verify a download")
            plan.append(PlannedFile(p.audio, release_url(benchmark, p.audio), p.audio_sha256, "audio",
                                    clip.id, p.pcm_sha256))
        if clip.video and clip.video in RELEASED_VIDEO_SHA256:
            plan.append(PlannedFile(clip.video, release_url(benchmark, clip.video),
                                    RELEASED_VIDEO_SHA256[clip.video], "video", clip.id))
    return plan


def verified_copy(root: str | os.PathLike, item: PlannedFile) -> Path | None:
    """A file under ``root`` that already is ``item``: the released bytes, or (audio) the same samples."""
    from interactive_eyes.data.paths import confined
    from interactive_eyes.download import sha256_file
    from interactive_eyes.media.errors import MediaError

    target = confined(root, item.relpath, item.kind)
    if target.is_file() and sha256_file(target) == item.sha256:
        return target
    if item.kind != "audio" or not item.pcm_sha256:
        return None
    from interactive_eyes.data.paths import audio_candidates
    from interactive_eyes.media.audio import pcm_sha256

    for cand in audio_candidates(root, item.relpath):
        if not cand.is_file():
            continue
        try:
            if pcm_sha256(cand)[0] == item.pcm_sha256:
                return cand
        except MediaError:
            continue
    return None


def fetch_release(
    root: str | os.PathLike,
    benchmark: Benchmark | None = None,
    *,
    clips: Sequence[str] | None = None,
    transport=None,
    progress: bool = True,
    retries: int | None = None,
    backoff: float | None = None,
) -> FetchReport:
    """Download every released file that is not already present and verified. Never raises for one file.

    Every file is tried; each failure is one ``FetchItem`` whose reason names the URL and the
    target path (``DownloadError``). After a first failure the remaining files are tried once
    each without retries: a network that is down would otherwise cost minutes of back-off.
    """
    from interactive_eyes.data import manifest

    benchmark = benchmark if benchmark is not None else manifest.load()
    root = Path(root)
    retries = RETRIES if retries is None else retries
    backoff = BACKOFF if backoff is None else backoff
    plan = plan_release(benchmark, clips)
    report = FetchReport(str(root))
    bar = _files_bar(progress, len(plan))
    try:
        for item in plan:
            have = verified_copy(root, item)
            if have is not None:
                report.items.append(FetchItem(item.relpath, str(have), "present", source=item.url))
            else:
                report.items.append(_download_one(root, item, transport, progress, retries, backoff))
                if not report.items[-1].ok:
                    retries = 0
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return report


def _download_one(root: Path, item: PlannedFile, transport, progress: bool, retries: int, backoff: float) -> FetchItem:
    """Download one released file onto ``root / item.relpath``; a failure is the item's reason."""
    from interactive_eyes.data.paths import PathEscapeError, write_target
    from interactive_eyes.download import DownloadError, download

    target = root / item.relpath
    try:
        # the download appends to <target>.part and renames it onto <target>: neither may lead
        # out of the root through a symlink (a linked folder of read-only shared data, say)
        write_target(root, item.relpath, item.kind)
        write_target(root, item.relpath + ".part", item.kind)
        download(item.url, target, sha256=item.sha256, transport=transport, progress=progress,
                 retries=retries, backoff=backoff)
        return FetchItem(item.relpath, str(target), "downloaded", source=item.url)
    except (DownloadError, PathEscapeError) as exc:
        return FetchItem(item.relpath, str(target), "failed", str(exc), item.url)
    except OSError as exc:  # e.g. the root cannot be created
        return FetchItem(item.relpath, str(target), "failed", f"{item.url} -> {target}: {exc.strerror or exc}", item.url)


def _files_bar(enabled: bool, total: int):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="file", desc="ie-bench data", leave=False)


# The YouTube steps, importable from here as before the split (the CLI and tests use fetch.*).
from interactive_eyes.data.youtube import (  # noqa: E402
    ALIGN_MARGIN,
    ALIGN_RATE,
    OUTPUT_AUDIO_RATE,
    YOUTUBE_FORMAT,
    Resolver,
    SourceStreams,
    alignment_path,
    decode_audio_range,
    extract_ground_truth,
    extract_reference_frame,
    fetch_youtube,
    iter_video_range,
    reference_frame_path,
    released_mix,
    resolve_youtube,
    source_fps,
    video_path,
)

__all__ = [
    "ALIGN_MARGIN", "ALIGN_RATE", "BACKOFF", "OUTPUT_AUDIO_RATE", "RAW_URL", "RETRIES", "YOUTUBE_FORMAT",
    "FetchError", "FetchItem", "FetchReport", "MissingExtraError", "PlannedFile", "Resolver", "SourceStreams",
    "alignment_path", "decode_audio_range", "extract_ground_truth", "extract_reference_frame", "fetch_release",
    "fetch_youtube", "iter_video_range", "plan_release", "reference_frame_path", "release_url", "released_mix",
    "resolve_youtube", "source_fps", "verified_copy", "video_path",
]
