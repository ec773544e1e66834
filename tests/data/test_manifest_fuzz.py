"""Manifest fuzzing: whatever the file holds, loading it gives a one-line ``ManifestError`` naming
the file, or a benchmark that keeps every rule (never a traceback, never a NaN that breaks the
results writer later). Derandomized, so CI sees the same examples every run; 13-29 s on the shared 2-core machine."""

from __future__ import annotations

import atexit
import copy
import json
import math
import re
import shutil
import tempfile

import pytest
from hypothesis import HealthCheck, configuration, given, settings
from hypothesis import strategies as st

from interactive_eyes.data import manifest as m

from manifest_samples import base  # tests/data is on sys.path (rootdir-relative imports)

SOURCE = "fuzz.json"
FUZZ = settings(max_examples=600, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# Hypothesis keeps caches (source constants, unicode tables) in ./.hypothesis, and its pytest plugin
# fills them while collecting this module: point it at a temporary folder before that happens,
# so nothing is written into the checkout, and remove the folder when the session ends.
_HYPOTHESIS_HOME = tempfile.mkdtemp(prefix="ie-bench-hypothesis-")
configuration.set_hypothesis_home_dir(_HYPOTHESIS_HOME)
atexit.register(shutil.rmtree, _HYPOTHESIS_HOME, ignore_errors=True)


# Values that sit on or across a rule's edge, next to hypothesis' own random ones.
NUMBER_EDGES = [
    math.nan, math.inf, -math.inf, 10**400, -(10**400), 2**63, 2**63 - 1, 1e308, -0.0, 0, 1, -1, 0.5,
    86400, 86400.5, 8.6 + 1 / 30, 8.6 + 1 / 30 + 1e-6, 999, 1000, 768000, 768001, 256, 257, True, "8.6",
]
TEXT_EDGES = [
    "", ".", "..", "/abs.wav", "a/../b.wav", "C:x.wav", "a\\b.wav", "a\x00b", "\ud800", "x" * 70, "\n", "\u2028",
    " a", "left", "right", "p0", "p1", "A", "a", "b", "A.MP4", "a.mp4", "b.mp4", "ab" * 32, "AB" * 32, "fast", 5, None,
]
EDGE_SCALARS = NUMBER_EDGES + TEXT_EDGES
KEYS = ["id", "duration", "people", "role", "audio", "speaking", "listening", "speaking_raw", "video",
        "prompt", "prompt_is_generic", "reference", "time", "youtube_id", "sample_rate", "channels",
        "n_samples", "pcm_sha256", "audio_sha256", "schema", "schema_version", "name", "version", "clips", "source"]

random_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6),
)
scalars = st.sampled_from(EDGE_SCALARS) | random_scalars
# edge values half of the time: random ones alone rarely land on a rule's boundary
values = st.one_of(
    st.sampled_from(EDGE_SCALARS + [math.nan, math.inf, -math.inf]),
    random_scalars,
    st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                 | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), inner, max_size=4), max_leaves=10),
)


def _paths(node, path=()):
    yield path
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, path + (k,))
    elif isinstance(node, list):
        for j, v in enumerate(node):
            yield from _paths(v, path + (j,))


def _get(node, path):
    for el in path:
        node = node[el]
    return node


@st.composite
def mutated(draw):
    """``base()`` with one to three edits: a value replaced, a key dropped or added, an item doubled.

    Leaves (numbers, strings) are picked three times as often as containers: that is where the
    rules on values are."""
    data = base()
    # mostly one edit: a second broken rule would often hide the first one's effect
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3]))):
        paths = list(_paths(data))
        leaves = [p for p in paths if not isinstance(_get(data, p), (dict, list))]
        path = draw(st.sampled_from(leaves) if leaves and draw(st.integers(0, 3)) else st.sampled_from(paths))
        action = draw(st.sampled_from(["replace", "replace", "drop", "add", "double"]))
        if not path:
            if action == "replace":
                data = draw(values)
            continue
        parent, last = _get(data, path[:-1]), path[-1]
        if action == "replace":
            # a number is mostly replaced by a number on some rule's edge, a text by an edge text
            old = parent[last]
            edges = NUMBER_EDGES if isinstance(old, (int, float)) else TEXT_EDGES if isinstance(old, str) else None
            parent[last] = draw(st.sampled_from(edges) if edges and draw(st.booleans()) else values)
        elif action == "drop":
            del parent[last]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(KEYS))] = draw(values)
        elif action == "double" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[last]))
        if not isinstance(data, (dict, list)):
            break
    return data


numbers = st.sampled_from(NUMBER_EDGES) | st.floats(allow_nan=True, allow_infinity=True) | st.integers(-10, 10**6)
texts = st.sampled_from(TEXT_EDGES) | st.text(max_size=8) | st.text("0123456789abcdefABCDEF", min_size=63, max_size=65)


@st.composite
def fields(draw):
    """``base()`` with the rule-bearing fields drawn afresh: durations, segments, paths, ids, hashes,
    rates: the values the loader must check, each from its edge values or at random."""
    data = base()
    for c in data["clips"]:
        c["duration"] = draw(numbers)
        if draw(st.booleans()):
            c["id"] = draw(texts)
        if draw(st.booleans()):
            c["video"] = draw(texts)
        for p in c["people"]:
            p["speaking"] = draw(st.lists(st.lists(numbers, min_size=2, max_size=2) | values, max_size=3))
            for key in ("audio", "pcm_sha256", "role"):
                if draw(st.booleans()):
                    p[key] = draw(texts)
            for key in ("sample_rate", "n_samples"):
                if draw(st.booleans()):
                    p[key] = draw(numbers)
    return data


def assert_one_line_error_or_valid(load_it, source: str = SOURCE):
    """``load_it()`` either raises a one-line ManifestError naming ``source`` or returns a valid benchmark."""
    try:
        bench = load_it()
    except m.ManifestError as exc:
        msg = str(exc)
        assert msg.startswith(f"{source}: ") and len(msg.splitlines()) == 1 and len(msg) < 600 + len(source), msg
        return None
    assert_valid(bench)
    return bench


# The oracle restates the documented rules (docs/manifest_schema.md) without the loader's code.
FRAME = 1 / 30  # the allowed segment overrun
DAY = 86400.0  # the longest clip
HEX64 = re.compile(r"[0-9a-f]{64}")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def safe_relpath(p) -> bool:
    return (isinstance(p, str) and p != "" and not p.startswith("/") and "\\" not in p
            and ".." not in p.split("/") and not CONTROL.search(p) and not re.match(r"[A-Za-z]:", p))


def valid_text(s) -> bool:
    """A str that UTF-8 can encode (no lone surrogate)."""
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return isinstance(s, str)


def assert_valid(bench: m.Benchmark) -> None:
    """What the rest of ie-bench may rely on for an accepted manifest."""
    ids = [c.id for c in bench]
    assert len({i.casefold() for i in ids}) == len(ids)
    for i in ids:
        assert valid_text(i) and i == i.strip() and "/" not in i and "\\" not in i and i not in ("", ".", "..")
        assert not CONTROL.search(i)
    videos = [c.video.casefold() for c in bench if c.video is not None]
    assert len(set(videos)) == len(videos)
    for c in bench:
        assert math.isfinite(c.duration) and 0 < c.duration <= DAY
        assert c.video is None or safe_relpath(c.video)
        assert isinstance(c.prompt, str) and valid_text(c.prompt)
        assert len({p.role for p in c.people}) == len(c.people) >= 1
        for p in c.people:
            assert safe_relpath(p.audio) and valid_text(p.audio)
            for s, e in p.speaking:
                assert 0 <= s <= e <= c.duration + FRAME + 1e-9
            for s, e in p.listening:
                assert 0 <= s < e <= c.duration
            for key in ("audio_sha256", "pcm_sha256"):
                v = getattr(p, key)
                assert v is None or (isinstance(v, str) and HEX64.fullmatch(v))
            for key in ("sample_rate", "channels", "n_samples"):
                v = getattr(p, key)
                assert v is None or (type(v) is int and 1 <= v < 2**63)
    # what score/results write must be strict JSON: no NaN/Infinity can have slipped through
    json.dumps([c.__dict__ for c in bench], default=lambda o: o.__dict__, allow_nan=False)
    json.dumps(bench.source, allow_nan=False)


@FUZZ
@given(mutated())
def test_mutated_objects_give_one_line_errors_or_valid_benchmarks(data):
    assert_one_line_error_or_valid(lambda: m.parse(data, source=SOURCE))


@FUZZ
@given(fields())
def test_drawn_fields_give_one_line_errors_or_valid_benchmarks(data):
    assert_one_line_error_or_valid(lambda: m.parse(data, source=SOURCE))


@pytest.fixture(scope="module")
def fuzz_file(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz") / SOURCE


@st.composite
def mutated_bytes(draw):
    """The base manifest's bytes with a few bytes changed, inserted or cut, or bytes of any kind."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=64))
    raw = bytearray(json.dumps(base()).encode())
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(raw)))
        kind = draw(st.sampled_from(["set", "insert", "cut"]))
        byte = draw(st.integers(0, 255) | st.sampled_from(list(b'[]{}",:0-9eE.\\')))
        if kind == "set" and i < len(raw):
            raw[i] = byte
        elif kind == "insert":
            raw.insert(i, byte)
        else:
            del raw[i:]
    return bytes(raw)


@FUZZ
@given(mutated_bytes())
def test_mutated_files_give_one_line_errors_or_valid_benchmarks(fuzz_file, raw):
    fuzz_file.write_bytes(raw)
    assert_one_line_error_or_valid(lambda: m.load(fuzz_file), source=str(fuzz_file))


def test_fuzz_oracle_rejects_and_accepts():
    """The fuzz checks can fail: a known-bad object is an error, the base object is valid."""
    data = base()
    data["clips"][0]["duration"] = math.nan
    assert assert_one_line_error_or_valid(lambda: m.parse(data, source=SOURCE)) is None
    assert assert_one_line_error_or_valid(lambda: m.parse(base(), source=SOURCE)) is not None
    with pytest.raises(AssertionError):
        assert_one_line_error_or_valid(lambda: (_ for _ in ()).throw(m.ManifestError("other.json: x\ny")))
