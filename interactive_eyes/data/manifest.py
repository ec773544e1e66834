"""Benchmark manifests: schema, validation, loading.

A manifest describes a benchmark as data: its clips, each clip's people ordered left to right,
each person's audio track (path relative to the data root, file and PCM checksums) and speaking
segments in **seconds**. Listening segments are the complement of the speaking segments within
``[0, duration]``. Any number of people N >= 1 is allowed; roles are ``left``/``right`` for the
two-person InteractiveEyes clips and ``p0 .. pN-1`` otherwise.

Schema ``ie-bench/manifest`` version 1 (``docs/manifest_schema.md``); the rules themselves
(types, finite and plausible numbers, segments within the clip, hashes, paths inside the data
root, UTF-8, nesting, duplicates) are ``manifest_checks``. Errors are one line:
``<manifest>: clip <id>: <field>: <what is wrong>``; nothing else escapes ``load``/``parse``
(``tests/data/test_manifest_fuzz.py``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from interactive_eyes.data import manifest_checks as checks

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
    protocol: str | None = None  # "single" | "interactive" | None (= interactive); docs/own_data.md

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


# Timecodes above 10**6 s (11.6 days) are not clip times; the bound also keeps the two-decimal
# test below exact (float spacing at 10**8 hundredths is 1.5e-8).
TIMECODE_MAX = 1e6


def timecode_to_seconds(value: float, fps: int = 30) -> float:
    """Convert a released ``seconds.frames`` timecode (e.g. 4.19 = 4 s + 19 frames at 30 fps).

    The InteractiveEyes annotations are such timecodes (see docs/interactive_eyes.md); the value
    is read through its two decimals so float noise (4.19 -> 4.18999...) cannot shift a frame.
    The frame part runs from .00 to ``fps - 1`` (.29 at 30 fps); ``.30`` would be the next
    second and is refused, and so are negative, non-finite and more-than-two-decimal values,
    which no timecode has (``ValueError`` naming the value).
    """
    if type(fps) is not int or not 1 <= fps <= 100:  # two decimals hold frame numbers 0..99
        raise ValueError(f"timecode frame rate must be an integer from 1 to 100, got {fps!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= TIMECODE_MAX:
        raise ValueError(f"{value!r} is not a seconds.frames timecode (need a number from 0 to {TIMECODE_MAX:g})")
    hundredths = round(float(value) * 100)
    # the float noise of value * 100 below 10**6 s is < 1e-7 hundredths; a third decimal is >= 0.1
    if abs(float(value) * 100 - hundredths) > 1e-6:
        raise ValueError(f"{value!r} is not a seconds.frames timecode (more than two decimals)")
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
    """Load and validate a manifest: a path, a shipped manifest name, or the default benchmark.

    Every problem is one ``ManifestError`` line naming the file (and the clip and field).
    """
    if path is None:
        path = default_manifest_path()
    elif not os.path.exists(path) and str(path) in shipped_manifests():
        path = default_manifest_path(str(path))
    p = Path(path)
    try:
        with open(p, "rb") as f:
            raw = f.read(checks.MAX_BYTES + 1)  # bounded: a wrong file must not fill memory
    except OSError as exc:
        raise ManifestError(_one_line(f"{p}: cannot read manifest ({exc.strerror or exc})")) from None
    except ValueError as exc:  # a path with a NUL byte
        raise ManifestError(_one_line(f"{str(p)!r}: cannot read manifest ({exc})")) from None
    try:
        data = checks.decode(raw)
    except checks.Invalid as exc:
        raise ManifestError(_one_line(f"{p}: {exc.what}")) from None
    return parse(data, source=str(p), sha256=hashlib.sha256(raw).hexdigest())


# Characters that end a line for str.splitlines(): escaped so that every error stays one line.
_LINE_BREAKS = {ord(c): c.encode("unicode_escape").decode() for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"}


def _one_line(msg: str) -> str:
    return msg.translate(_LINE_BREAKS)


def parse(data: Any, *, source: str = "<manifest>", sha256: str | None = None) -> Benchmark:
    """Validate a manifest object (as loaded from JSON) and build the typed benchmark.

    The rules are ``manifest_checks.check`` (docs/manifest_schema.md); the first broken one is
    raised as ``ManifestError("<source>: <clip and field>: <what is wrong>")``.
    """

    def fail(where: str, msg: str):
        raise ManifestError(_one_line(f"{source}: {where}: {msg}"))

    try:
        checks.check(data, SCHEMA, SCHEMA_VERSION)
    except checks.Invalid as exc:
        fail(exc.where, exc.what)
    clips = []
    for i, c in enumerate(data["clips"]):
        clips.append(_build_clip(c, checks.clip_label(data["clips"], i), fail))
    digest = sha256 or hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    return Benchmark(
        name=data["name"],
        version=data["version"],
        clips=tuple(clips),
        source=dict(data.get("source") or {}),
        path=None if source.startswith("<") else source,
        sha256=digest,
        protocol=data.get("protocol"),
    )


def _pairs(value) -> tuple[Segment, ...]:
    return tuple((float(s), float(e)) for s, e in value)


def _build_clip(c: dict, where: str, fail) -> Clip:
    """The typed clip from a checked one; the listening segments are computed (and compared)."""
    duration = float(c["duration"])
    people = []
    for k, p in enumerate(c["people"]):
        speaking = _pairs(p["speaking"])
        listening = complement(speaking, duration)
        if "listening" in p:
            given = _pairs(p["listening"])
            if len(given) != len(listening) or any(
                abs(a - b) > 1e-6 for ga, la in zip(given, listening) for a, b in zip(ga, la)
            ):
                fail(where, f"people[{k}].listening: must be the complement of speaking within [0, duration]")
        raw = p.get("speaking_raw")
        people.append(
            Person(
                role=p["role"],
                audio=p["audio"],
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
        duration=duration,
        people=tuple(people),
        prompt=c.get("prompt") or "",
        prompt_is_generic=bool(c.get("prompt_is_generic", False)),
        reference=dict(c.get("reference") or {}),
        video=c.get("video"),
    )
