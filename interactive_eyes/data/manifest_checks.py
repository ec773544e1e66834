"""The rules a manifest must follow, checked before anything is built from it.

``decode`` turns the file's bytes into JSON data (UTF-8, bounded size and nesting, integer
literals too long to be real values kept as infinities instead of a 4300-digit ``int``
traceback, duplicate keys remembered); ``check`` applies every rule of the schema
(docs/manifest_schema.md). Both raise ``Invalid(where, what)``; ``manifest.load``/``parse``
turn that into the one-line ``ManifestError`` ``<file>: clip <id>: <field>: <what is wrong>``.

The bounds below are there to refuse values no real benchmark has (a 1e308 s clip, 10**400
samples), not to second-guess plausible ones; each says why it is where it is.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from interactive_eyes.data.paths import relpath_problem

# A manifest is a few hundred kB (InteractiveEyes: 29 clips, ~0.1 MB); 64 MiB is far beyond any
# benchmark and keeps a wrong file (a video passed as --manifest) from being read into memory.
MAX_BYTES = 64 * 1024 * 1024
# The schema nests 7 containers deep (top > clips > clip > people > person > speaking > segment);
# free-form objects (source, reference) get room for a few levels more.
MAX_DEPTH = 16
# Integer literals longer than this are not counts or rates of anything (2**63 has 19 digits).
MAX_INT_DIGITS = 19
# Clip length bound: a day. Talking-video benchmark clips last seconds (InteractiveEyes 5.4-8.6 s);
# a manifest saying more is wrong (the score/validate video checks compare against it).
MAX_DURATION = 86400.0
# Speaking segments may overrun the clip by one 30 fps frame: the released InteractiveEyes end
# times are 30 fps timecodes and overrun the audio by less than a frame (interact_6: 6.567 s vs
# 6.549 s). The 1e-9 absorbs float noise of the timecode conversion.
FRAME_SLACK = 1.0 / 30 + 1e-9
# Reference times are seconds into a source video (a seek target for `data fetch`): 10**6 s
# (11.6 days) is beyond any video; 1e308 would overflow the seek.
MAX_SOURCE_TIME = 1e6
# Audio: rates from 1 kHz to 768 kHz (the highest in common use); up to 256 channels.
SAMPLE_RATE_RANGE = (1000, 768_000)
MAX_CHANNELS = 256
MAX_ID_LENGTH = 200
# How `score` treats the benchmark by default (docs/own_data.md): "single" = the paper's single-person
# Table 1 (Sync-C/D, identity, FID/FVD vs the ground truth), "interactive" = every metric (InteractiveEyes).
PROTOCOLS = ("single", "interactive")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class Invalid(Exception):
    """One broken rule: ``where`` (``clip <id>: <field>`` or a top-level field) and ``what``."""

    def __init__(self, where: str, what: str):
        super().__init__(f"{where}: {what}")
        self.where, self.what = where, what


class OversizedInt(float):
    """An integer literal too long to be a real value (``10**400``): +-inf that remembers its text."""

    def __new__(cls, text: str):
        obj = super().__new__(cls, -math.inf if text.startswith("-") else math.inf)
        obj.text = text
        return obj

    def __repr__(self) -> str:
        digits = len(self.text.lstrip("-"))
        return f"an integer of {digits} digits ({self.text[:6]}...)"


class _Object(dict):
    """A JSON object that had some key more than once (``json`` keeps only the last value)."""

    duplicates: list[str]


def _pairs(pairs: list[tuple[str, Any]]) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        dup = [k for k, _ in pairs if k in seen or seen.add(k)]
        obj = _Object(obj)
        obj.duplicates = dup
    return obj


def _int(text: str):
    return OversizedInt(text) if len(text.lstrip("-")) > MAX_INT_DIGITS else int(text)


def decode(raw: bytes) -> Any:
    """JSON data from a manifest file's bytes; ``Invalid('file', ...)`` when it is not UTF-8 JSON."""
    if len(raw) > MAX_BYTES:
        raise Invalid("file", f"larger than {MAX_BYTES // 2**20} MiB: not a manifest")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Invalid("file", f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})") from None
    text = text.removeprefix("\ufeff")  # a byte-order mark is not content (RFC 8259 lets parsers ignore it)
    try:
        # NaN/Infinity literals are parsed (as float) so the field check can name where they are
        return json.loads(text, parse_int=_int, object_pairs_hook=_pairs)
    except json.JSONDecodeError as exc:
        raise Invalid("file", f"not valid JSON (line {exc.lineno} column {exc.colno}: {exc.msg})") from None
    except RecursionError:
        # the C parser gives up near the interpreter's recursion limit (1000 frames by default)
        raise Invalid("file", f"nested too deeply to parse (hundreds of levels; a manifest needs at most {MAX_DEPTH})") from None


# --------------------------------------------------------------------------- messages


def got(value: Any) -> str:
    """A value as the message shows it: JSON words for containers, short reprs for the rest."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, (list, tuple)):
        # a short list of plain values is shown (a segment: [1.0, 2.0, 3.0]); anything else is named
        if len(value) <= 4 and not any(isinstance(x, (dict, list, tuple)) for x in value):
            return "[" + ", ".join(got(x) for x in value) + "]"
        return "a list"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and abs(value) >= 2**63:  # repr of a 5000-digit int raises ValueError
        return f"an integer of about {max(1, round(value.bit_length() * math.log10(2)))} digits"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _key(k: Any) -> str:
    return k if isinstance(k, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,40}", k) else got(k)


def id_problem(cid: Any) -> str | None:
    """Why a clip id cannot be one (it names ``<id>.mp4`` and ``frames/<id>.png``), or None."""
    if not isinstance(cid, str) or not cid:
        return f"must be a non-empty string, got {got(cid)}"
    if len(cid) > MAX_ID_LENGTH:
        return f"longer than {MAX_ID_LENGTH} characters"
    if "/" in cid or "\\" in cid or cid in (".", "..") or _CONTROL.search(cid):
        return f"must be a file name ('/', '\\', '.', '..' and control characters are not allowed), got {got(cid)}"
    if cid != cid.strip():
        return f"has leading or trailing white space: {got(cid)}"
    return None


def clip_label(clips: Any, i: int) -> str:
    c = clips[i] if isinstance(clips, list) and 0 <= i < len(clips) else None
    cid = c.get("id") if isinstance(c, dict) else None
    return f"clip {cid}" if id_problem(cid) is None else f"clips[{i}]"


def where_of(path: tuple, data: Any) -> str:
    """``clip <id>: people[0].speaking[1]`` for the JSON path ``clips[i].people[0].speaking[1]``."""
    head, rest = None, path
    if len(path) >= 2 and path[0] == "clips" and isinstance(path[1], int):
        head, rest = clip_label(data.get("clips") if isinstance(data, dict) else None, path[1]), path[2:]
    text = ""
    for el in rest:
        text += f"[{el}]" if isinstance(el, int) else ("." if text else "") + _key(el)
    if head:
        return f"{head}: {text}" if text else head
    return text or "top level"


# --------------------------------------------------------------------------- generic scan


def scan(data: Any) -> None:
    """Rules for every value wherever it is: JSON types only, finite numbers, valid Unicode,
    bounded nesting, no key twice in one object."""
    stack = [(data, (), 1)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, (dict, list, tuple)) and depth > MAX_DEPTH:
            raise Invalid(where_of(path, data), f"nested {depth} levels deep (at most {MAX_DEPTH})")
        if isinstance(value, dict):
            duplicates = getattr(value, "duplicates", ())
            if duplicates:
                raise Invalid(where_of(path + (duplicates[0],), data), "appears twice in the same object")
            for k, v in value.items():
                if not isinstance(k, str):
                    raise Invalid(where_of(path, data), f"object keys must be strings, got {got(k)}")
                _check_text(k, path + (k,), data)
                stack.append((v, path + (k,), depth + 1))
        elif isinstance(value, (list, tuple)):
            stack.extend((v, path + (j,), depth + 1) for j, v in enumerate(value))
        elif isinstance(value, str):
            _check_text(value, path, data)
        elif isinstance(value, bool) or value is None:
            pass
        elif isinstance(value, int):
            if abs(value) >= 2**63:
                raise Invalid(where_of(path, data), f"must be a plausible number (below 2**63), got {got(value)}")
        elif isinstance(value, float):
            if isinstance(value, OversizedInt):
                raise Invalid(where_of(path, data), f"must be a plausible number (below 2**63), got {got(value)}")
            if not math.isfinite(value):
                raise Invalid(where_of(path, data), f"must be a finite number, got {got(value)}")
        else:
            raise Invalid(where_of(path, data), f"must be JSON data, got a Python {type(value).__name__}")


def _check_text(s: str, path: tuple, data: Any) -> None:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid(where_of(path, data), "text holds an unpaired surrogate (\\ud800-\\udfff): not valid Unicode") from None


# --------------------------------------------------------------------------- the schema


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check(data: Any, schema: str, version: int) -> None:
    """Every rule of the schema; the first broken one is raised as ``Invalid``."""
    if not isinstance(data, dict):
        raise Invalid("top level", f"must be an object, got {got(data)}")
    scan(data)
    if data.get("schema") != schema:
        raise Invalid("schema", f"must be {schema!r}, got {got(data.get('schema'))}")
    v = data.get("schema_version")
    if type(v) is not int or v != version:  # `true == 1` in Python: the type test keeps booleans out
        raise Invalid("schema_version", f"unsupported version {got(v)} (this ie-bench reads {version})")
    for key in ("name", "version"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise Invalid(key, f"must be a non-empty string, got {got(data.get(key))}")
    # the name is a folder name: the default data root is ~/.cache/ie-bench/data/<name>
    problem = id_problem(data["name"])
    if problem:
        raise Invalid("name", problem)
    _optional(data, "description", str, "description", "a string")
    if data.get("protocol") is not None and data["protocol"] not in PROTOCOLS:
        raise Invalid("protocol", f"must be one of {', '.join(map(repr, PROTOCOLS))} or null, "
                                  f"got {got(data['protocol'])}")
    _check_source(data.get("source"))
    clips = data.get("clips")
    if not isinstance(clips, list) or not clips:
        raise Invalid("clips", f"must be a non-empty list, got {got(clips)}")
    ids: dict[str, tuple[str, int]] = {}  # casefolded id -> (id, index)
    videos: dict[str, str] = {}  # casefolded video path -> clip id
    for i, c in enumerate(clips):
        where = clip_label(clips, i)
        if not isinstance(c, dict):
            raise Invalid(where, f"must be an object, got {got(c)}")
        problem = id_problem(c.get("id"))
        if problem:
            raise Invalid(where, f"id: {problem}")
        cid = c["id"]
        other, j = ids.get(cid.casefold(), (None, None))
        if other == cid:
            raise Invalid(where, f"id: duplicate clip id (also clips[{j}])")
        if other is not None:
            raise Invalid(where, f"id: {cid!r} and clips[{j}] {other!r} differ only in case (their <id>.mp4 "
                                 "files would collide on a case-insensitive file system)")
        ids[cid.casefold()] = (cid, i)
        _check_clip(c, where)
        if c.get("video") is not None:
            prev = videos.get(c["video"].casefold())
            if prev is not None:
                raise Invalid(where, f"video: {got(c['video'])} is also the video of clip {prev} (same file, "
                                     "or names that differ only in case)")
            videos[c["video"].casefold()] = cid


def _optional(obj: dict, key: str, typ: type, where: str, what: str) -> None:
    v = obj.get(key)
    if v is not None and (not isinstance(v, typ) or (typ is not bool and isinstance(v, bool))):
        raise Invalid(where, f"must be {what} or null, got {got(v)}")


def _sha256(obj: dict, key: str, where: str) -> None:
    v = obj.get(key)
    if v is not None and not (isinstance(v, str) and _HEX64.fullmatch(v)):
        raise Invalid(where, f"must be a sha256 (64 lowercase hex digits), got {got(v)}")


def _path(obj: dict, key: str, where: str, required: bool) -> None:
    v = obj.get(key)
    if v is None and not required:
        return
    problem = relpath_problem(v)
    if problem:
        raise Invalid(where, f"{got(v)} {problem}" if isinstance(v, str) and v else f"{problem}, got {got(v)}")


def _check_source(src: Any) -> None:
    if src is None:
        return
    if not isinstance(src, dict):
        raise Invalid("source", f"must be an object or null, got {got(src)}")
    for key in ("repository", "commit", "folder", "annotation_format"):
        _optional(src, key, str, f"source.{key}", "a string")
    _path(src, "annotation_file", "source.annotation_file", required=False)
    _optional(src, "segments", dict, "source.segments", "an object (where the speaking segments come from)")
    _sha256(src, "annotation_sha256", "source.annotation_sha256")


def _check_clip(c: dict, where: str) -> None:
    d = c.get("duration")
    if not is_number(d) or not 0 < d <= MAX_DURATION:
        raise Invalid(where, f"duration: must be a positive number of seconds up to {MAX_DURATION:g} "
                             f"(one day), got {got(d)}")
    _optional(c, "prompt", str, f"{where}: prompt", "a string")
    _optional(c, "prompt_is_generic", bool, f"{where}: prompt_is_generic", "true/false")
    _path(c, "video", f"{where}: video", required=False)
    _sha256(c, "video_sha256", f"{where}: video_sha256")
    ref = c.get("reference")
    if ref is not None:
        if not isinstance(ref, dict):
            raise Invalid(where, f"reference: must be an object or null, got {got(ref)}")
        _optional(ref, "youtube_id", str, f"{where}: reference.youtube_id", "a string")
        _optional(ref, "note", str, f"{where}: reference.note", "a string")
        t = ref.get("time")
        if t is not None and (not is_number(t) or not 0 <= t <= MAX_SOURCE_TIME):
            raise Invalid(where, f"reference.time: must be a time from 0 to {MAX_SOURCE_TIME:g} s in the source "
                                 f"video or null, got {got(t)}")
    people = c.get("people")
    if not isinstance(people, list) or not people:
        raise Invalid(where, f"people: must be a non-empty list (ordered left to right), got {got(people)}")
    n = len(people)
    expected = ["left", "right"] if n == 2 else [f"p{k}" for k in range(n)]
    numbered = [f"p{k}" for k in range(n)]
    roles: dict[str, int] = {}
    for k, p in enumerate(people):
        pw = f"people[{k}]"
        if not isinstance(p, dict):
            raise Invalid(where, f"{pw}: must be an object, got {got(p)}")
        role = p.get("role")
        if isinstance(role, str) and role in roles:
            raise Invalid(where, f"{pw}.role: duplicate role {role!r} (also people[{roles[role]}])")
        if role not in (expected[k], numbered[k]):
            raise Invalid(where, f"{pw}.role: expected {expected[k]!r} (people are ordered left to right), "
                                 f"got {got(role)}")
        roles[role] = k
        _check_person(p, where, pw, float(d))
    if n == 2 and len({r in ("left", "right") for r in roles}) > 1:
        raise Invalid(where, f"people: roles {sorted(roles)} mix left/right with p0/p1: use one scheme")


def _check_person(p: dict, where: str, pw: str, duration: float) -> None:
    _path(p, "audio", f"{where}: {pw}.audio", required=True)
    if "speaking" not in p:
        # a missing key used to mean "never speaks" silently; that must be said: []
        raise Invalid(where, f"{pw}.speaking: missing (write [] for a person who never speaks)")
    segments(p["speaking"], where, f"{pw}.speaking", duration)
    if "listening" in p:
        segments(p["listening"], where, f"{pw}.listening", duration)
    if p.get("speaking_raw") is not None:
        segments(p["speaking_raw"], where, f"{pw}.speaking_raw", None)
    for key in ("audio_sha256", "pcm_sha256"):
        _sha256(p, key, f"{where}: {pw}.{key}")
    for key, lo, hi in (("sample_rate", *SAMPLE_RATE_RANGE), ("channels", 1, MAX_CHANNELS),
                        ("n_samples", 1, int(MAX_DURATION * SAMPLE_RATE_RANGE[1]))):
        v = p.get(key)
        if v is not None and (type(v) is not int or not lo <= v <= hi):
            raise Invalid(where, f"{pw}.{key}: must be an integer from {lo} to {hi}, got {got(v)}")


def segments(value: Any, where: str, fld: str, duration: float | None) -> list[tuple[float, float]]:
    """``[[start, end], ...]`` in seconds: numbers, ``0 <= start <= end``, ``end <= duration`` + a frame."""
    if not isinstance(value, (list, tuple)):
        raise Invalid(where, f"{fld}: must be a list of [start, end] pairs, got {got(value)}")
    out = []
    for j, seg in enumerate(value):
        if not isinstance(seg, (list, tuple)) or len(seg) != 2 or not all(is_number(x) for x in seg):
            raise Invalid(where, f"{fld}[{j}]: must be a [start, end] pair of numbers, got {got(seg)}")
        s, e = float(seg[0]), float(seg[1])
        if s < 0 or e < s:
            raise Invalid(where, f"{fld}[{j}]: [{s}, {e}] is not a valid segment (need 0 <= start <= end)")
        if duration is not None and e > duration + FRAME_SLACK:
            raise Invalid(where, f"{fld}[{j}]: [{s}, {e}] ends after the clip ({duration:.3f} s; one 30 fps "
                                 "frame of overrun is allowed)")
        out.append((s, e))
    return out
