"""Benchmark manifests: schema, validation, loading.

A manifest describes a benchmark as data: its clips, each clip's people ordered left to right,
each person's audio track (path relative to the data root, file and PCM checksums) and speaking
segments in **seconds**. Listening segments are the complement of the speaking segments within
``[0, duration]``. Any number of people N >= 1 is allowed; roles are ``left``/``right`` for the
two-person InteractiveEyes clips and ``p0 .. pN-1`` otherwise.

Schema ``ie-bench/manifest`` version 1 (``docs/manifest_schema.md``). Errors are one line:
``<manifest>: clip <id>: <field>: <what is wrong>``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

SCHEMA = "ie-bench/manifest"
SCHEMA_VERSION = 1

Segment = tuple[float, float]


class ManifestError(ValueError):
    """A manifest that does not follow the schema; the message names the clip and field."""


@dataclass(frozen=True)
class Person:
    role: str
    audio: str  # relative to the data root
    speaking: tuple[Segment, ...]  # seconds
    listening: tuple[Segment, ...]  # seconds, complement of speaking within [0, duration]
    audio_sha256: str | None = None  # sha256 of the released file
    pcm_sha256: str | None = None  # sha256 of the decoded int16 interleaved samples
    sample_rate: int | None = None
    channels: int | None = None
    n_samples: int | None = None
    speaking_raw: tuple[tuple[float, float], ...] | None = None  # the released values, as released

    @property
    def speaks(self) -> bool:
        return any(e > s for s, e in self.speaking)

    def is_speaking(self, t: float) -> bool:
        """Half-open test ``s <= t < e`` (the corrected convention; paper mode has its own)."""
        return any(s <= t < e for s, e in self.speaking)

    def is_listening(self, t: float) -> bool:
        return not self.is_speaking(t)


@dataclass(frozen=True)
class Clip:
    id: str
    duration: float
    people: tuple[Person, ...]
    prompt: str = ""
    prompt_is_generic: bool = False
    reference: dict[str, Any] = field(default_factory=dict)
    video: str | None = None  # ground-truth video, relative to the data root, when known

    @property
    def n_people(self) -> int:
        return len(self.people)

    def person(self, role: str) -> Person:
        for p in self.people:
            if p.role == role:
                return p
        raise KeyError(f"clip {self.id}: no person with role {role!r}")


@dataclass(frozen=True)
class Benchmark:
    name: str
    version: str
    clips: tuple[Clip, ...]
    source: dict[str, Any]
    path: str | None
    sha256: str

    def __len__(self) -> int:
        return len(self.clips)

    def __iter__(self):
        return iter(self.clips)

    @property
    def clip_ids(self) -> list[str]:
        return [c.id for c in self.clips]

    def clip(self, clip_id: str) -> Clip:
        for c in self.clips:
            if c.id == clip_id:
                return c
        import difflib

        close = difflib.get_close_matches(clip_id, self.clip_ids, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise KeyError(f"{self.name}: no clip {clip_id!r}{hint}")


# --------------------------------------------------------------------------- segments


def complement(segments: list[Segment] | tuple[Segment, ...], duration: float) -> tuple[Segment, ...]:
    """The parts of [0, duration] not covered by ``segments`` (which may overlap or overrun)."""
    out: list[Segment] = []
    t = 0.0
    for s, e in sorted((max(0.0, s), min(duration, e)) for s, e in segments if e > s):
        if s > t:
            out.append((t, s))
        t = max(t, e)
    if t < duration:
        out.append((t, duration))
    return tuple(out)


def timecode_to_seconds(value: float, fps: int = 30) -> float:
    """Convert a released ``seconds.frames`` timecode (e.g. 4.19 = 4 s + 19 frames at 30 fps).

    The InteractiveEyes annotations are such timecodes (see docs/interactive_eyes.md); the value
    is read through its two decimals so float noise (4.19 -> 4.18999...) cannot shift a frame.
    """
    hundredths = round(float(value) * 100)
    seconds, frames = divmod(hundredths, 100)
    if frames >= fps:
        raise ValueError(f"{value!r} is not a seconds.frames timecode at {fps} fps (frame {frames} >= {fps})")
    return seconds + frames / fps


# --------------------------------------------------------------------------- loading


def default_manifest_path(name: str = "interactive_eyes") -> Path:
    """The shipped manifest ``data/manifests/<name>.json`` (package data, cwd independent)."""
    return Path(str(resources.files("interactive_eyes.manifests").joinpath(f"{name}.json")))


def shipped_manifests() -> list[str]:
    return sorted(
        p.name[:-5] for p in resources.files("interactive_eyes.manifests").iterdir() if p.name.endswith(".json")
    )


def load(path: str | os.PathLike | None = None) -> Benchmark:
    """Load and validate a manifest: a path, a shipped manifest name, or the default benchmark."""
    if path is None:
        path = default_manifest_path()
    elif not os.path.exists(path) and str(path) in shipped_manifests():
        path = default_manifest_path(str(path))
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ManifestError(f"{p}: cannot read manifest ({exc.strerror})") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{p}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    return parse(data, source=str(p), sha256=hashlib.sha256(raw).hexdigest())


def parse(data: Any, *, source: str = "<manifest>", sha256: str | None = None) -> Benchmark:
    """Validate a manifest object (as loaded from JSON) and build the typed benchmark."""

    def fail(where: str, msg: str):
        raise ManifestError(f"{source}: {where}: {msg}")

    if not isinstance(data, dict):
        fail("top level", "must be an object")
    if data.get("schema") != SCHEMA:
        fail("schema", f"must be {SCHEMA!r}, got {data.get('schema')!r}")
    if data.get("schema_version") != SCHEMA_VERSION:
        fail("schema_version", f"unsupported version {data.get('schema_version')!r} (this ie-bench reads {SCHEMA_VERSION})")
    for key in ("name", "version"):
        if not isinstance(data.get(key), str) or not data[key]:
            fail(key, "must be a non-empty string")
    clips_raw = data.get("clips")
    if not isinstance(clips_raw, list) or not clips_raw:
        fail("clips", "must be a non-empty list")
    clips = []
    seen: set[str] = set()
    for i, c in enumerate(clips_raw):
        cid = c.get("id") if isinstance(c, dict) else None
        where = f"clip {cid}" if isinstance(cid, str) and cid else f"clips[{i}]"
        if not isinstance(c, dict):
            fail(where, "must be an object")
        if not isinstance(cid, str) or not cid or "/" in cid:
            fail(where, "id: must be a non-empty string without '/'")
        if cid in seen:
            fail(where, "id: duplicate clip id")
        seen.add(cid)
        clips.append(_parse_clip(c, where, fail))
    digest = sha256 or hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    return Benchmark(
        name=data["name"],
        version=data["version"],
        clips=tuple(clips),
        source=dict(data.get("source") or {}),
        path=None if source.startswith("<") else source,
        sha256=digest,
    )


def _segments(value, where, fld, fail) -> tuple[Segment, ...]:
    if not isinstance(value, list):
        fail(where, f"{fld}: must be a list of [start, end] pairs")
    out = []
    for j, seg in enumerate(value):
        if (
            not isinstance(seg, (list, tuple))
            or len(seg) != 2
            or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in seg)
        ):
            fail(where, f"{fld}[{j}]: must be a [start, end] pair of numbers")
        s, e = float(seg[0]), float(seg[1])
        if s < 0 or e < s:
            fail(where, f"{fld}[{j}]: [{s}, {e}] is not a valid segment (need 0 <= start <= end)")
        out.append((s, e))
    return tuple(out)


def _parse_clip(c: dict, where: str, fail) -> Clip:
    duration = c.get("duration")
    if not isinstance(duration, (int, float)) or isinstance(duration, bool) or duration <= 0:
        fail(where, f"duration: must be a positive number of seconds, got {duration!r}")
    people_raw = c.get("people")
    if not isinstance(people_raw, list) or not people_raw:
        fail(where, "people: must be a non-empty list (ordered left to right)")
    n = len(people_raw)
    expected_roles = ["left", "right"] if n == 2 else [f"p{k}" for k in range(n)]
    alt_roles = [f"p{k}" for k in range(n)]
    people = []
    for k, p in enumerate(people_raw):
        pw = f"people[{k}]"
        if not isinstance(p, dict):
            fail(where, f"{pw}: must be an object")
        role = p.get("role")
        if role not in (expected_roles[k], alt_roles[k]):
            fail(where, f"{pw}.role: expected {expected_roles[k]!r} (people are ordered left to right), got {role!r}")
        audio = p.get("audio")
        if not isinstance(audio, str) or not audio or os.path.isabs(audio) or ".." in Path(audio).parts:
            fail(where, f"{pw}.audio: must be a relative path inside the data root, got {audio!r}")
        speaking = _segments(p.get("speaking", []), where, f"{pw}.speaking", fail)
        for s, e in speaking:
            # one 30 fps frame of slack: released end times may overrun the audio by < 1 frame
            if s > duration + 1 / 30:
                fail(where, f"{pw}.speaking: segment [{s}, {e}] starts after the clip ends ({duration} s)")
        listening = complement(speaking, float(duration))
        if "listening" in p:
            given = _segments(p["listening"], where, f"{pw}.listening", fail)
            if len(given) != len(listening) or any(
                abs(a - b) > 1e-6 for ga, la in zip(given, listening) for a, b in zip(ga, la)
            ):
                fail(where, f"{pw}.listening: must be the complement of speaking within [0, duration]")
        raw = p.get("speaking_raw")
        for key in ("audio_sha256", "pcm_sha256"):
            v = p.get(key)
            if v is not None and (not isinstance(v, str) or len(v) != 64):
                fail(where, f"{pw}.{key}: must be a 64-hex-digit sha256")
        people.append(
            Person(
                role=role,
                audio=audio,
                speaking=speaking,
                listening=listening,
                audio_sha256=p.get("audio_sha256"),
                pcm_sha256=p.get("pcm_sha256"),
                sample_rate=p.get("sample_rate"),
                channels=p.get("channels"),
                n_samples=p.get("n_samples"),
                speaking_raw=tuple(tuple(x) for x in raw) if raw is not None else None,
            )
        )
    return Clip(
        id=c["id"],
        duration=float(duration),
        people=tuple(people),
        prompt=c.get("prompt", "") or "",
        prompt_is_generic=bool(c.get("prompt_is_generic", False)),
        reference=dict(c.get("reference") or {}),
        video=c.get("video"),
    )
