"""A manifest from your own videos: ``ie-bench manifest build VIDEOS_DIR --out my.json``.

One clip per video (id = file stem). For each clip:

* the video is probed (``media.video.probe``: duration, fps, size, frame count) and copied into
  the data root as ``videos/<id><ext>`` (a hard link where the file system allows), with its
  sha256: it is the clip's ground truth, the reference set of FID/FVD (``score --reference``);
* each person's audio track goes into the data root as ``audio/<id>_<role>.<ext>``: for one
  person, the video's own audio (decoded to 16-bit PCM WAV at its native rate and channel count:
  it is that person's track); for several people, the files ``<id>_<role>.wav|flac`` found under
  ``--tracks DIR`` (copied as they are, the InteractiveEyes layout). A mix of several voices is no
  one's track, so more than one person without tracks is an error, never a silent guess;
* speaking segments come from Silero VAD on each person's own track, with the same code and
  settings ``ie-bench data verify`` uses to check the released InteractiveEyes annotations
  (``verify.detect_speech``); they are cut to ``[0, duration]``;
* ``reference_frames``: the first decoded frame is written as ``<dir>/<id>.png``, where
  ``ie-bench run --reference-frames DIR`` looks for it (``app/run.py``).

The clip's duration is the **video's** duration: the ground truth defines the clip, and a
generated video is accepted when it is at most one frame longer and four frames shorter
(``app/checks.py``), so the ground truth always passes its own clip's check (its audio, here or
in the tracks, may run a few ms longer: InteractiveEyes clip 11's video is 8.542 s, its tracks
8.597 s; each track's own length is recorded as ``n_samples``/``sample_rate``).

The manifest records where its segments come from (``source.segments``: the VAD, its package
version, model file and sha256, and every threshold ``get_speech_timestamps`` ran with) and is
checked by ``manifest.parse`` before it is written. A clip whose video cannot be read, or whose
track is missing, is left out with a one-line reason (``BuildReport.problems``); the others are
built.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from interactive_eyes.data import manifest as manifest_mod
from interactive_eyes.data.manifest_checks import id_problem
from interactive_eyes.data.paths import AUDIO_EXTENSIONS, write_target
from interactive_eyes.download import sha256_file
from interactive_eyes.stats.reference import VIDEO_EXTENSIONS

PROTOCOL_SINGLE = "single"  # the paper's Table 1 protocol (docs/own_data.md)
PROTOCOL_INTERACTIVE = "interactive"  # the InteractiveEyes protocol: every metric


class BuildError(ValueError):
    """Input that cannot become a manifest (a usage error): one line naming the file and the fix."""


@dataclass
class BuildReport:
    manifest: dict
    out: Path
    root: Path
    problems: list[str] = field(default_factory=list)  # one line per clip left out

    @property
    def n_clips(self) -> int:
        return len(self.manifest["clips"])


def roles_for(n: int) -> list[str]:
    """The schema's roles: ``left``/``right`` for two people, ``p0 .. pN-1`` otherwise."""
    return ["left", "right"] if n == 2 else [f"p{k}" for k in range(n)]


def find_videos(videos_dir: str | os.PathLike) -> list[Path]:
    """The videos of a folder (not recursive, sorted); two files with one stem are an error."""
    d = Path(videos_dir)
    if not d.is_dir():
        raise BuildError(f"{d}: not a folder of videos")
    files = sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
    if not files:
        raise BuildError(f"{d}: no videos ({', '.join(VIDEO_EXTENSIONS)})")
    seen: dict[str, Path] = {}
    for p in files:
        key = p.stem.casefold()  # ids may not differ only in case (manifest rule)
        if key in seen:
            raise BuildError(f"{p}: same clip id as {seen[key].name} (one video per id)")
        seen[key] = p
        problem = id_problem(p.stem)
        if problem:
            raise BuildError(f"{p}: the file stem is the clip id and {problem}")
    return files


def index_tracks(tracks_dir: str | os.PathLike) -> dict[str, Path]:
    """``{"<clip>_<role>": file}`` for every .wav/.flac under ``tracks_dir`` (recursively), so the
    InteractiveEyes layout (``audio_left/``, ``audio_right/``) works as it is."""
    d = Path(tracks_dir)
    if not d.is_dir():
        raise BuildError(f"{d}: --tracks must be a folder of <clip>_<role>.wav|flac files")
    out: dict[str, Path] = {}
    for p in sorted(d.rglob("*")):
        if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS:
            if p.stem in out:
                raise BuildError(f"{p}: track {p.stem} is also {out[p.stem]} (one file per person)")
            out[p.stem] = p
    return out


def people_of(clip_id: str, tracks: dict[str, Path] | None, people: int | None) -> list[str]:
    """The roles of a clip: ``people`` if given, else inferred from its tracks, else one person.

    Tracks named ``left``/``right`` mean two people; ``p0``, ``p1``, ... as many as there are in a
    row (the schema also accepts ``p0``/``p1`` for two). No track for the clip: ``[]``.
    """
    if tracks is None and people is None:
        return roles_for(1)
    tracks = tracks or {}
    has = lambda role: f"{clip_id}_{role}" in tracks  # noqa: E731
    if people is not None:
        if people == 2 and not (has("left") or has("right")) and has("p0") and has("p1"):
            return ["p0", "p1"]
        return roles_for(people)
    if has("left") or has("right"):
        return ["left", "right"]
    n = 0
    while has(f"p{n}"):
        n += 1
    return [f"p{k}" for k in range(n)]


def missing_tracks_message(video: Path, roles: list[str]) -> str:
    names = " and ".join(f"{video.stem}_{r}.wav|flac" for r in roles)
    return (f"{video}: {len(roles)} people need one audio track each: pass --tracks DIR holding {names} "
            f"(the video's own audio mixes everybody's voice, so it is no one person's track)")


# --------------------------------------------------------------------------- VAD provenance


def vad_settings() -> dict:
    """What the segments come from: Silero VAD's package, model file and the settings it ran with.

    The thresholds are read from ``get_speech_timestamps``' own defaults (``verify.detect_speech``
    calls it with defaults), so the record cannot drift from what ran.
    """
    import importlib.metadata
    import inspect
    from importlib import resources

    from silero_vad import get_speech_timestamps

    from interactive_eyes.data.verify import VAD_SAMPLE_RATE

    sig = inspect.signature(get_speech_timestamps).parameters
    keys = ("threshold", "min_speech_duration_ms", "min_silence_duration_ms", "speech_pad_ms",
            "max_speech_duration_s", "window_size_samples", "neg_threshold")
    settings = {k: sig[k].default for k in keys if k in sig}
    if settings.get("max_speech_duration_s") == float("inf"):
        settings["max_speech_duration_s"] = None  # JSON has no infinity: null = no limit
    model = resources.files("silero_vad.data").joinpath("silero_vad.jit")
    return {
        "method": "silero-vad",
        "package_version": importlib.metadata.version("silero-vad"),
        "model": "silero_vad.jit",
        "model_sha256": sha256_file(str(model)),
        "sample_rate": VAD_SAMPLE_RATE,
        "downmix": "channel mean",
        "settings": settings,
        "tracks": "each person's own track (one person: the video's own audio)",
        "clipped_to": "[0, duration] (the video's duration)",
    }


# --------------------------------------------------------------------------- one clip


def _place(src: Path, root: Path, rel: str) -> Path:
    """Put ``src`` at ``root/rel`` (a hard link where possible, else a copy)."""
    dest = write_target(root, rel, "file")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        dest.unlink()
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)
    return dest


def _extract_audio(video: Path, root: Path, rel: str) -> Path:
    """The video's audio as 16-bit PCM WAV at its native rate and channels (an exact int16 copy
    of what a decoder gives; the PCM hash is taken from this file)."""
    from interactive_eyes.media.audio import load_audio, write_wav

    samples = load_audio(video, sample_rate=None, mono=False, dtype="int16")
    rate = _native_rate(video)
    dest = write_target(root, rel, "audio track")
    write_wav(dest, samples, rate)
    return dest


def _native_rate(path: Path) -> int:
    from interactive_eyes.media.video import probe

    rate = probe(path).audio_rate
    if not rate:
        raise BuildError(f"{path}: no audio stream (a talking video needs its audio)")
    return int(rate)


def _track_record(path: Path, rel: str, duration: float, vad_model) -> dict:
    from interactive_eyes.data.verify import detect_speech
    from interactive_eyes.media.audio import pcm_sha256
    from interactive_eyes.media.errors import MediaError

    rec: dict = {"audio": rel, "audio_sha256": sha256_file(path)}
    try:
        digest, info = pcm_sha256(path)
        rec["pcm_sha256"] = digest
    except MediaError:  # not 16-bit PCM (e.g. a 24-bit FLAC): no PCM hash, the file hash stays
        from interactive_eyes.media.audio import audio_info

        info = audio_info(path)
    rec.update(sample_rate=info.sample_rate, channels=info.channels,
               n_samples=int(round(info.duration * info.sample_rate)))
    rec["speaking"] = clip_segments(detect_speech(path, vad_model), duration)
    return rec


def clip_segments(segments: Sequence[tuple[float, float]], duration: float) -> list[list[float]]:
    """VAD segments cut to ``[0, duration]`` (empty ones dropped), rounded to 0.1 ms (the VAD's
    own resolution at 16 kHz is 0.0625 ms, its window 32 ms)."""
    out = []
    for s, e in segments:
        s, e = max(0.0, float(s)), min(float(duration), float(e))
        if e > s:
            out.append([round(s, 4), round(e, 4)])
    return out


def build_clip(video: Path, root: Path, roles: list[str], tracks: dict[str, Path] | None,
               vad_model, reference_frames: Path | None = None) -> dict:
    """The manifest entry of one video (files written under ``root``); raises for bad input."""
    from interactive_eyes.media.video import probe

    cid = video.stem
    if len(roles) > 1 and any(f"{cid}_{r}" not in (tracks or {}) for r in roles):
        raise BuildError(missing_tracks_message(video, roles))  # before anything is written
    info = probe(video)
    if info.duration <= 0:
        raise BuildError(f"{video}: video has no duration")
    duration = round(float(info.duration), 6)
    rel_video = f"videos/{cid}{video.suffix.lower()}"
    _place(video, root, rel_video)
    people = []
    for role in roles:
        src = (tracks or {}).get(f"{cid}_{role}")
        if src is None:  # one person: the video's own audio is their track
            if not info.has_audio:
                raise BuildError(f"{video}: no audio stream (a talking video needs its audio)")
            rel = f"audio/{cid}_{role}.wav"
            path = _extract_audio(video, root, rel)
        else:
            rel = f"audio/{cid}_{role}{src.suffix.lower()}"
            path = _place(src, root, rel)
        people.append({"role": role, **_track_record(path, rel, duration, vad_model)})
    if reference_frames is not None:
        write_first_frame(video, reference_frames / f"{cid}.png")
    return {"id": cid, "duration": duration, "video": rel_video, "video_sha256": sha256_file(video),
            "fps": info.fps, "width": info.width, "height": info.height, "n_frames": info.n_frames,
            "people": people}


def write_first_frame(video: Path, dest: Path) -> Path:
    """The first decoded frame as PNG (lossless: the method starts from exactly that image)."""
    from PIL import Image

    from interactive_eyes.media.video import iter_frames

    first = next(iter(iter_frames(video)), None)
    if first is None:
        raise BuildError(f"{video}: no frame could be decoded")
    dest.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(first.rgb).save(dest)
    return dest


# --------------------------------------------------------------------------- the whole folder


def build_manifest(
    videos_dir: str | os.PathLike,
    out: str | os.PathLike,
    *,
    root: str | os.PathLike | None = None,
    tracks_dir: str | os.PathLike | None = None,
    people: int | None = None,
    name: str | None = None,
    reference_frames: str | os.PathLike | None = None,
    protocol: str | None = None,
    echo: Callable[[str], None] | None = None,
) -> BuildReport:
    """Build, validate and write the manifest of a folder of videos (module docstring).

    ``root``: the data root that receives the tracks and videos (default: the benchmark's,
    ``~/.cache/ie-bench/data/<name>``). ``protocol``: recorded in the manifest; by default
    ``single`` when every clip has one person, else ``interactive``.
    Raises ``BuildError`` for usage errors (bad folder, several people without tracks, nothing
    buildable); per-clip problems are in the report.
    """
    from interactive_eyes.data.paths import data_root
    from interactive_eyes.data.verify import load_vad
    from interactive_eyes.media.errors import MediaError

    videos = find_videos(videos_dir)
    if people is not None and people < 1:
        raise BuildError(f"--people {people}: must be at least 1")
    name = name or _default_name(Path(videos_dir))
    problem = id_problem(name)
    if problem:
        raise BuildError(f"--name {name!r}: {problem} (it names the data root folder)")
    if protocol not in (None, PROTOCOL_SINGLE, PROTOCOL_INTERACTIVE):
        raise BuildError(f"--protocol {protocol!r}: must be {PROTOCOL_SINGLE} or {PROTOCOL_INTERACTIVE}")
    tracks = index_tracks(tracks_dir) if tracks_dir is not None else None
    plan = [(v, people_of(v.stem, tracks, people)) for v in videos]
    if tracks is None and people is not None and people > 1:  # before any work: nothing can be built
        roles = roles_for(people)
        raise BuildError(f"{videos_dir}: --people {people} needs one audio track per person: pass --tracks DIR "
                         f"holding <clip>_{'.wav|flac, <clip>_'.join(roles)}.wav|flac for every video "
                         f"(e.g. {videos[0].stem}_{roles[0]}.wav; a video's own audio mixes everybody's voice, "
                         "so it is no one person's track)")
    if protocol == PROTOCOL_SINGLE and people is not None and people > 1:
        raise BuildError(f"--protocol single is for single-person videos, not --people {people}")
    root = data_root(root, name)
    root.mkdir(parents=True, exist_ok=True)
    ref_dir = Path(reference_frames) if reference_frames is not None else None
    model = load_vad()
    clips, problems = [], []
    for video, roles in plan:
        if not roles:
            problems.append(f"{video}: no track {video.stem}_<role>.wav|flac under {tracks_dir} "
                            f"(roles left/right for two people, p0..pN-1 otherwise)")
        else:
            try:
                clips.append(build_clip(video, root, roles, tracks, model, ref_dir))
            except (BuildError, MediaError) as exc:
                problems.append(" ".join(str(exc).split()))
        if echo:
            echo(f"{video.name}: ok" if clips and clips[-1]["id"] == video.stem else f"left out: {problems[-1]}")
    if not clips:
        raise BuildError(f"{videos_dir}: no clip could be built ({problems[0]})")
    if protocol is None:
        protocol = PROTOCOL_SINGLE if all(len(c["people"]) == 1 for c in clips) else PROTOCOL_INTERACTIVE
    if protocol == PROTOCOL_SINGLE and any(len(c["people"]) != 1 for c in clips):
        raise BuildError("--protocol single needs one person per clip")
    doc = {
        "schema": manifest_mod.SCHEMA,
        "schema_version": manifest_mod.SCHEMA_VERSION,
        "name": name,
        "version": "1",
        "description": f"built by `ie-bench manifest build` from {Path(videos_dir).resolve()}",
        "protocol": protocol,
        "source": {"folder": str(Path(videos_dir).resolve()), "segments": vad_settings()},
        "clips": clips,
    }
    manifest_mod.parse(doc, source=str(out))  # the manifest the project reads, or a ManifestError
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    os.replace(tmp, out)
    return BuildReport(manifest=doc, out=out, root=root, problems=problems)


def _default_name(videos_dir: Path) -> str:
    """The folder's name as a benchmark name (characters a file name cannot hold replaced)."""
    raw = videos_dir.resolve().name or "my_videos"
    cleaned = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in raw).strip("_")
    return cleaned or "my_videos"
