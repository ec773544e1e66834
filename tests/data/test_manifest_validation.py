"""Manifest validation: every rejected case is one exact line naming the file, clip and field;
the boundaries (one frame of segment overrun, a day of clip, 64 hex digits, nesting depth) sit
exactly where the docs say; bad bytes (NaN, 10**400, non-UTF-8, deep nesting) are one line too;
and `validate`/`score` print that line and exit 2."""

from __future__ import annotations

import copy
import json

import pytest
from click.testing import CliRunner

from interactive_eyes.data import manifest as m
from interactive_eyes.data import manifest_checks as checks

from manifest_samples import H, base  # tests/data is on sys.path (rootdir-relative imports)


def P(k, **kw):
    return lambda d: d["clips"][0]["people"][k].update(**kw)


def C(i, **kw):
    return lambda d: d["clips"][i].update(**kw)


def pop(k, key):
    return lambda d: d["clips"][0]["people"][k].pop(key)


def error_of(data, source="x.json") -> str:
    with pytest.raises(m.ManifestError) as err:
        m.parse(data, source=source)
    msg = str(err.value)
    assert len(msg.splitlines()) == 1, msg
    return msg


def test_base_is_valid():
    b = m.parse(base())
    a, bb = b.clips
    assert (a.duration, a.person("left").speaking, a.person("right").listening) == (8.6, ((1.0, 4.0),), ((0.0, 4.0),))
    assert bb.people[0].speaking == () and bb.people[0].listening == ((0.0, 5.0),) and not bb.people[0].speaks


# (case, mutation of base(), the exact message after "x.json: ")
CASES = [
    ('nan duration', C(0, duration=float("nan")),
     'clip a: duration: must be a finite number, got nan'),
    ('inf duration', C(0, duration=float("inf")),
     'clip a: duration: must be a finite number, got inf'),
    ('1e308 duration', C(0, duration=1e308),
     'clip a: duration: must be a positive number of seconds up to 86400 (one day), got 1e+308'),
    ('zero duration', C(0, duration=0),
     'clip a: duration: must be a positive number of seconds up to 86400 (one day), got 0'),
    ('string duration', C(0, duration="8.6"),
     "clip a: duration: must be a positive number of seconds up to 86400 (one day), got '8.6'"),
    ('bool duration', C(0, duration=True),
     'clip a: duration: must be a positive number of seconds up to 86400 (one day), got true'),
    ('10**400 n_samples', P(0, n_samples=10**400),
     'clip a: people[0].n_samples: must be a plausible number (below 2**63), got an integer of about 400 digits'),
    ('10**5000 n_samples', P(0, n_samples=10**5000),
     'clip a: people[0].n_samples: must be a plausible number (below 2**63), got an integer of about 5000 digits'),
    ('nan segment', P(0, speaking=[[1.0, float("nan")]]),
     'clip a: people[0].speaking[0][1]: must be a finite number, got nan'),
    ('speaking missing', pop(1, "speaking"),
     'clip a: people[1].speaking: missing (write [] for a person who never speaks)'),
    ('speaking null', P(1, speaking=None),
     'clip a: people[1].speaking: must be a list of [start, end] pairs, got null'),
    ('segment past end', P(0, speaking=[[1.0, 100.0]]),
     'clip a: people[0].speaking[0]: [1.0, 100.0] ends after the clip (8.600 s; one 30 fps frame of overrun is allowed)'),
    ('segment start past end', P(0, speaking=[[9.0, 9.5]]),
     'clip a: people[0].speaking[0]: [9.0, 9.5] ends after the clip (8.600 s; one 30 fps frame of overrun is allowed)'),
    ('start > end', P(0, speaking=[[3.0, 2.0]]),
     'clip a: people[0].speaking[0]: [3.0, 2.0] is not a valid segment (need 0 <= start <= end)'),
    ('negative start', P(0, speaking=[[-0.5, 2.0]]),
     'clip a: people[0].speaking[0]: [-0.5, 2.0] is not a valid segment (need 0 <= start <= end)'),
    ('triple', P(0, speaking=[[1.0, 2.0, 3.0]]),
     'clip a: people[0].speaking[0]: must be a [start, end] pair of numbers, got [1.0, 2.0, 3.0]'),
    ('string in segment', P(0, speaking=[["1", 2.0]]),
     "clip a: people[0].speaking[0]: must be a [start, end] pair of numbers, got ['1', 2.0]"),
    ('sample_rate fast', P(0, sample_rate="fast"),
     "clip a: people[0].sample_rate: must be an integer from 1000 to 768000, got 'fast'"),
    ('sample_rate float', P(0, sample_rate=48000.0),
     'clip a: people[0].sample_rate: must be an integer from 1000 to 768000, got 48000.0'),
    ('sample_rate 0', P(0, sample_rate=0),
     'clip a: people[0].sample_rate: must be an integer from 1000 to 768000, got 0'),
    ('channels 0', P(0, channels=0),
     'clip a: people[0].channels: must be an integer from 1 to 256, got 0'),
    ('prompt int', C(0, prompt=5),
     'clip a: prompt: must be a string or null, got 5'),
    ('prompt_is_generic str', C(0, prompt_is_generic="yes"),
     "clip a: prompt_is_generic: must be true/false or null, got 'yes'"),
    ('pcm non-hex', P(0, pcm_sha256="g" * 64),
     "clip a: people[0].pcm_sha256: must be a sha256 (64 lowercase hex digits), got 'gggggggggggggggggggggggggggggggggggggggggggggggggggggggg..."),
    ('pcm short', P(0, pcm_sha256="ab" * 31),
     "clip a: people[0].pcm_sha256: must be a sha256 (64 lowercase hex digits), got 'abababababababababababababababababababababababababababab..."),
    ('pcm upper', P(0, pcm_sha256="AB" * 32),
     "clip a: people[0].pcm_sha256: must be a sha256 (64 lowercase hex digits), got 'ABABABABABABABABABABABABABABABABABABABABABABABABABABABAB..."),
    ('audio_sha int', P(0, audio_sha256=5),
     'clip a: people[0].audio_sha256: must be a sha256 (64 lowercase hex digits), got 5'),
    ('dup id', C(1, id="a"),
     'clip a: id: duplicate clip id (also clips[0])'),
    ('case id', C(1, id="A"),
     "clip A: id: 'A' and clips[0] 'a' differ only in case (their <id>.mp4 files would collide on a case-insensitive file system)"),
    ('dup role', P(1, role="left"),
     "clip a: people[1].role: duplicate role 'left' (also people[0])"),
    ('mixed roles', P(1, role="p1"),
     "clip a: people: roles ['left', 'p1'] mix left/right with p0/p1: use one scheme"),
    ('audio abs', P(0, audio="/etc/passwd"),
     "clip a: people[0].audio: '/etc/passwd' is absolute (must be relative to the data root)"),
    ('audio dotdot', P(0, audio="../x.wav"),
     "clip a: people[0].audio: '../x.wav' contains '..' (must stay inside the data root)"),
    ('audio backslash', P(0, audio="audio_left\\a.wav"),
     "clip a: people[0].audio: 'audio_left\\\\a.wav' contains a backslash (use '/' between folder names)"),
    ('audio nul', P(0, audio="a\x00.wav"),
     "clip a: people[0].audio: 'a\\x00.wav' contains a control character"),
    ('video abs', C(0, video="/tmp/a.mp4"),
     "clip a: video: '/tmp/a.mp4' is absolute (must be relative to the data root)"),
    ('video dotdot', C(0, video="x/../../a.mp4"),
     "clip a: video: 'x/../../a.mp4' contains '..' (must stay inside the data root)"),
    ('video int', C(0, video=3),
     'clip a: video: must be a non-empty string (a path relative to the data root), got 3'),
    ('dup video', C(1, video="A.MP4"),
     "clip b: video: 'A.MP4' is also the video of clip a (same file, or names that differ only in case)"),
    ('id missing', lambda d: d["clips"][0].pop("id"),
     'clips[0]: id: must be a non-empty string, got null'),
    ('id int', C(0, id=3),
     'clips[0]: id: must be a non-empty string, got 3'),
    ('id spaces', C(0, id="a "),
     "clips[0]: id: has leading or trailing white space: 'a '"),
    ('name slash', lambda d: d.update(name="x/y"),
     "name: must be a file name ('/', '\\', '.', '..' and control characters are not allowed), got 'x/y'"),
    ('id slash', C(0, id="x/y"),
     "clips[0]: id: must be a file name ('/', '\\', '.', '..' and control characters are not allowed), got 'x/y'"),
    ('id dotdot', C(0, id=".."),
     "clips[0]: id: must be a file name ('/', '\\', '.', '..' and control characters are not allowed), got '..'"),
    ('id newline', C(0, id="a\nb"),
     "clips[0]: id: must be a file name ('/', '\\', '.', '..' and control characters are not allowed), got 'a\\nb'"),
    ('reference time neg', lambda d: d["clips"][0]["reference"].update(time=-1),
     'clip a: reference.time: must be a time from 0 to 1e+06 s in the source video or null, got -1'),
    ('reference time 1e308', lambda d: d["clips"][0]["reference"].update(time=1e308),
     'clip a: reference.time: must be a time from 0 to 1e+06 s in the source video or null, got 1e+308'),
    ('reference list', C(0, reference=[1]),
     'clip a: reference: must be an object or null, got [1]'),
    ('deep reference', C(0, reference={"x": [[[[[[[[[[[[[1]]]]]]]]]]]]]}),
     'clip a: reference.x[0][0][0][0][0][0][0][0][0][0][0][0]: nested 17 levels deep (at most 16)'),
    ('nan in source', lambda d: d["source"].update(extra=float("nan")),
     'source.extra: must be a finite number, got nan'),
    ('annotation file abs', lambda d: d["source"].update(annotation_file="/etc/x"),
     "source.annotation_file: '/etc/x' is absolute (must be relative to the data root)"),
    ('surrogate prompt', C(0, prompt="\ud800"),
     'clip a: prompt: text holds an unpaired surrogate (\\ud800-\\udfff): not valid Unicode'),
    ('bytes prompt', C(0, prompt=b"x"),
     'clip a: prompt: must be JSON data, got a Python bytes'),
    ('schema_version true', lambda d: d.update(schema_version=True),
     'schema_version: unsupported version true (this ie-bench reads 1)'),
    ('name dotdot', lambda d: d.update(name=".."),
     "name: must be a file name ('/', '\\', '.', '..' and control characters are not allowed), got '..'"),
    ('listening wrong', P(0, listening=[[0.0, 1.0]]),
     'clip a: people[0].listening: must be the complement of speaking within [0, duration]'),
    ('raw start>end', P(0, speaking_raw=[[4.0, 1.0]]),
     'clip a: people[0].speaking_raw[0]: [4.0, 1.0] is not a valid segment (need 0 <= start <= end)'),
    ('people empty', C(1, people=[]),
     'clip b: people: must be a non-empty list (ordered left to right), got []'),
    ('clips empty', lambda d: d.update(clips=[]),
     'clips: must be a non-empty list, got []'),
]


@pytest.mark.parametrize("mutate, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_rejected_case_is_one_exact_line(mutate, expected):
    data = base()
    mutate(data)
    assert error_of(data) == f"x.json: {expected}"


def test_top_level_must_be_an_object():
    assert error_of([base()]) == "x.json: top level: must be an object, got a list"


def test_the_shipped_manifest_relies_on_explicit_never_speaks():
    """interact_23..29: the left person never speaks, written as speaking [] (raw [[0.0, 0.0]]),
    never as a missing key, so the stricter rule changes nothing there."""
    raw = json.loads(m.default_manifest_path().read_text())
    assert all("speaking" in p for c in raw["clips"] for p in c["people"])
    never = [(c["id"], p["role"]) for c in raw["clips"] for p in c["people"] if p["speaking"] == []]
    assert never == [(f"interact_{i}", "left") for i in range(23, 30)]
    for c in raw["clips"]:
        for p in c["people"]:
            assert (p["speaking"] == []) == (p["speaking_raw"] == [[0.0, 0.0]])


# --------------------------------------------------------------------------- boundaries


@pytest.mark.parametrize("end, ok", [
    (8.6 + 1 / 30, True),  # one 30 fps frame of overrun: the released end times need it
    (8.6 + 1 / 30 + 1e-6, False),
    (8.6, True),
])
def test_segment_end_may_overrun_by_one_frame_exactly(end, ok):
    data = base()
    data["clips"][0]["people"][1]["speaking"] = [[4.0, end]]
    if ok:
        right = m.parse(data).clips[0].person("right")
        assert right.speaking == ((4.0, end),) and right.listening == ((0.0, 4.0),)
    else:
        assert "ends after the clip (8.600 s" in error_of(data)


def test_empty_and_zero_segments_mean_never_speaks():
    for speaking in ([], [[0.0, 0.0]], [[2.0, 2.0]]):
        data = base()
        data["clips"][1]["people"][0]["speaking"] = speaking
        p = m.parse(data).clips[1].people[0]
        assert not p.speaks and p.listening == ((0.0, 5.0),)


@pytest.mark.parametrize("duration, ok", [(86400, True), (86400.001, False), (1e-3, True), (-1e-9, False)])
def test_duration_bounds(duration, ok):
    data = base()
    data["clips"][1]["duration"] = duration
    data["clips"][1]["people"][0]["speaking"] = []
    if ok:
        assert m.parse(data).clips[1].duration == duration
    else:
        assert error_of(data).startswith("x.json: clip b: duration: must be a positive number of seconds")


@pytest.mark.parametrize("rate, ok", [(1000, True), (768000, True), (999, False), (768001, False)])
def test_sample_rate_bounds(rate, ok):
    data = base()
    data["clips"][0]["people"][0]["sample_rate"] = rate
    if ok:
        assert m.parse(data).clips[0].people[0].sample_rate == rate
    else:
        assert error_of(data) == ("x.json: clip a: people[0].sample_rate: must be an integer from 1000 to 768000, "
                                  f"got {rate}")


@pytest.mark.parametrize("digest, ok", [("0123456789abcdef" * 4, True), ("0" * 63, False), ("0" * 65, False),
                                         ("0" * 63 + "g", False), (None, True)])
def test_sha256_must_be_64_lowercase_hex(digest, ok):
    data = base()
    data["clips"][0]["people"][0]["audio_sha256"] = digest
    if ok:
        assert m.parse(data).clips[0].people[0].audio_sha256 == digest
    else:
        assert "people[0].audio_sha256: must be a sha256 (64 lowercase hex digits)" in error_of(data)


def test_nesting_depth_limit_is_exact():
    def nest(n):  # n containers below the reference object
        v = 1
        for _ in range(n):
            v = [v]
        return v

    # reference object is level 4 (top > clips > clip > reference): 12 more lists reach the limit 16
    data = base()
    data["clips"][0]["reference"]["x"] = nest(12)
    m.parse(data)
    data["clips"][0]["reference"]["x"] = nest(13)
    assert error_of(data).endswith(": nested 17 levels deep (at most 16)")


# --------------------------------------------------------------------------- bytes on disk


def _replace_duration(text: str, literal: str) -> str:
    assert '"duration": 8.6' in text
    return text.replace('"duration": 8.6', f'"duration": {literal}', 1)


@pytest.mark.parametrize("content, expected", [
    (lambda t: _replace_duration(t, "NaN"), "clip a: duration: must be a finite number, got nan"),
    (lambda t: _replace_duration(t, "Infinity"), "clip a: duration: must be a finite number, got inf"),
    (lambda t: _replace_duration(t, "-Infinity"), "clip a: duration: must be a finite number, got -inf"),
    (lambda t: _replace_duration(t, "1e400"), "clip a: duration: must be a finite number, got inf"),
    (lambda t: _replace_duration(t, "1" + "0" * 400),
     "clip a: duration: must be a plausible number (below 2**63), got an integer of 401 digits (100000...)"),
    # 5000 digits: past Python's 4300-digit int parsing limit (a ValueError traceback before)
    (lambda t: _replace_duration(t, "9" * 5000),
     "clip a: duration: must be a plausible number (below 2**63), got an integer of 5000 digits (999999...)"),
    (lambda t: _replace_duration(t, "8.6, \"duration\": 1e300"), "clip a: duration: appears twice in the same object"),
    (lambda t: t.replace('"two people"', '"\\ud800"'),
     "clip a: prompt: text holds an unpaired surrogate (\\ud800-\\udfff): not valid Unicode"),
    (lambda t: "[" * 100_000 + "]" * 100_000, "nested too deeply to parse (hundreds of levels; a manifest needs at most 16)"),
    (lambda t: '{"a": ' + "[" * 16 + "]" * 16 + "}", "a[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]: nested 17 levels deep (at most 16)"),
    (lambda t: t[:-40], "not valid JSON (line 1 column "),
    (lambda t: "", "not valid JSON (line 1 column 1: Expecting value)"),
], ids=["NaN", "Infinity", "-Infinity", "1e400", "10**400", "10**5000", "duplicate key", "lone surrogate",
        "100000 levels", "17 levels", "truncated", "empty"])
def test_bad_json_is_one_line_naming_the_file(tmp_path, content, expected):
    path = tmp_path / "bad.json"
    path.write_text(content(json.dumps(base())), encoding="utf-8")
    with pytest.raises(m.ManifestError) as err:
        m.load(path)
    msg = str(err.value)
    assert len(msg.splitlines()) == 1 and msg.startswith(f"{path}: {expected}"), msg


def test_non_utf8_bytes(tmp_path):
    text = json.dumps(base()).replace("two people", "tw\u00e9 people")
    assert "\\u00e9" not in text  # the character itself, not an escape
    latin1 = tmp_path / "latin1.json"
    latin1.write_bytes(text.encode("latin-1"))
    offset = text.encode("latin-1").index(b"\xe9")
    with pytest.raises(m.ManifestError) as err:
        m.load(latin1)
    assert str(err.value) == f"{latin1}: not UTF-8 text (byte 0xe9 at offset {offset})"
    utf16 = tmp_path / "utf16.json"
    utf16.write_bytes(text.encode("utf-16"))
    with pytest.raises(m.ManifestError, match=r"utf16.json: not UTF-8 text \(byte 0xff at offset 0\)$"):
        m.load(utf16)
    bom = tmp_path / "bom.json"  # a byte-order mark is not content: accepted
    bom.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert m.load(bom).clips[0].prompt == "tw\u00e9 people"


def test_oversized_file_and_folder(tmp_path, monkeypatch):
    path = tmp_path / "m.json"
    path.write_text(json.dumps(base()))
    monkeypatch.setattr(checks, "MAX_BYTES", 100)
    with pytest.raises(m.ManifestError) as err:
        m.load(path)
    assert str(err.value) == f"{path}: larger than 0 MiB: not a manifest"
    monkeypatch.undo()
    with pytest.raises(m.ManifestError) as err:
        m.load(tmp_path)
    assert str(err.value) == f"{tmp_path}: cannot read manifest (Is a directory)"
    with pytest.raises(m.ManifestError) as err:
        m.load("a\x00b.json")
    assert str(err.value) == "'a\\x00b.json': cannot read manifest (embedded null byte)"


def test_line_breaks_in_values_and_names_are_escaped():
    data = base()
    data["clips"][0]["people"][0]["pcm_sha256"] = "x\n" * 3
    assert error_of(data) == ("x.json: clip a: people[0].pcm_sha256: must be a sha256 (64 lowercase hex digits), "
                              "got 'x\\nx\\nx\\n'")
    data = base()
    data["clips"][0]["prompt"] = 5
    # a file name with a line break (or U+2028, which str.splitlines also splits on) stays one line
    assert error_of(data, source="we\nird\u2028.json") == (
        "we\\nird\\u2028.json: clip a: prompt: must be a string or null, got 5")


# --------------------------------------------------------------------------- the CLI


@pytest.mark.parametrize("command", ["validate", "score"])
@pytest.mark.parametrize("mutate, expected", [
    (C(0, duration=1e308), "clip a: duration: must be a positive number of seconds up to 86400 (one day), got 1e+308"),
    (pop(1, "speaking"), "clip a: people[1].speaking: missing (write [] for a person who never speaks)"),
    (C(0, video="../../outside.mp4"), "clip a: video: '../../outside.mp4' contains '..' (must stay inside the data root)"),
], ids=["1e308", "no speaking", "video .."])
def test_validate_and_score_print_the_line_and_exit_2(tmp_path, command, mutate, expected):
    from interactive_eyes.app import exit_codes
    from interactive_eyes.app.cli import main

    data = base()
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    gen = tmp_path / "gen"
    gen.mkdir()
    r = CliRunner().invoke(main, [command, str(gen), "--manifest", str(path)])
    assert r.exit_code == exit_codes.USAGE, r.output
    assert "Traceback" not in r.output
    assert r.output.strip().splitlines() == [f"Error: {path}: {expected}"]
