"""The shipped InteractiveEyes manifest and the manifest loader/validator."""

from __future__ import annotations

import copy
import json

import pytest

from interactive_eyes.data import manifest as m
from interactive_eyes.data import release


@pytest.fixture(scope="module")
def bench():
    return m.load()


@pytest.fixture(scope="module")
def raw():
    return json.loads(m.default_manifest_path().read_text())


def test_shipped_manifest_facts(bench):
    assert bench.name == "interactive_eyes" and len(bench) == 29
    assert bench.clip_ids == [f"interact_{i}" for i in range(1, 30)]
    for clip in bench:
        assert [p.role for p in clip.people] == ["left", "right"]
        assert 5.3 < clip.duration < 8.7
        assert clip.prompt and clip.prompt_is_generic
        for p in clip.people:
            assert p.audio == f"audio_{p.role}/{clip.id}_{p.role}.wav"
            assert len(p.audio_sha256) == 64 and len(p.pcm_sha256) == 64
            assert (p.sample_rate, p.channels) == (48000, 2)


def test_interact_1_left_speaks_in_true_seconds(bench):
    """The issue's example: released 4.19-7.11 = 4.633 s to 7.367 s (30 fps timecodes)."""
    left = bench.clip("interact_1").person("left")
    assert left.speaking_raw == ((4.19, 7.11),)
    (s, e), = left.speaking
    assert s == pytest.approx(4 + 19 / 30) and round(s, 3) == 4.633
    assert e == pytest.approx(7 + 11 / 30) and round(e, 3) == 7.367


def test_never_speaking_and_listening_complement(bench):
    for i in range(23, 30):
        left = bench.clip(f"interact_{i}").person("left")
        assert left.speaking_raw == ((0.0, 0.0),) and left.speaking == () and not left.speaks
        assert left.listening == ((0.0, bench.clip(f"interact_{i}").duration),)
    right = bench.clip("interact_6").person("right")
    assert len(right.speaking) == 2
    # the second turn runs to the end of the audio (6.567 s vs 6.549 s of audio): no listening tail
    assert right.speaking[1][1] > bench.clip("interact_6").duration
    assert right.listening == ((right.speaking[0][1], right.speaking[1][0]),)
    left = bench.clip("interact_6").person("left")  # speaks 2.00-5.16 -> 2.0 to 5 + 16/30 s
    assert left.listening == ((0.0, 2.0), (5 + 16 / 30, bench.clip("interact_6").duration))


def test_raw_values_match_release_and_are_timecodes(bench, raw):
    for clip in bench:
        for p in clip.people:
            for s, e in p.speaking_raw:
                for v in (s, e):
                    assert round(v * 100) % 100 < 30  # seconds.frames at 30 fps
            assert [list(x) for x in p.speaking] == release.convert_segments([list(x) for x in p.speaking_raw])


def test_reference_sources(bench):
    assert bench.clip("interact_10").reference["youtube_id"] is None
    assert bench.clip("interact_11").reference == {"youtube_id": "K9wBEUaTEQU", "time": 142.0}


def test_manifest_matches_release_annotations(ie_root, bench):
    """speaking_raw is exactly the released speaker_duration.json."""
    released = json.loads((ie_root / "speaker_duration.json").read_text())
    for clip in bench:
        for p in clip.people:
            assert [list(x) for x in p.speaking_raw] == released[f"{clip.id}.mp4"][p.role]


def test_rebuild_from_release_is_identical(ie_root, raw):
    """The shipped manifest is what the builder produces from the release (checksum list + audio)."""
    rebuilt = release.build_manifest(ie_root, release.read_sha256_list(ie_root / "original_sha256.txt"))
    assert json.loads(json.dumps(rebuilt)) == raw


def test_timecode_conversion():
    assert m.timecode_to_seconds(4.19) == pytest.approx(4 + 19 / 30)
    assert m.timecode_to_seconds(8.18) == pytest.approx(8.6)
    assert m.timecode_to_seconds(0.0) == 0.0
    with pytest.raises(ValueError):
        m.timecode_to_seconds(1.45)


def test_complement_handles_overlap_and_overrun():
    assert m.complement([(1, 2), (1.5, 3), (9, 12)], 10) == ((0.0, 1), (3, 9))
    assert m.complement([], 5) == ((0.0, 5),)


def test_any_number_of_people(raw):
    data = copy.deepcopy(raw)
    clip = data["clips"][0]
    third = copy.deepcopy(clip["people"][1])
    clip["people"] = [dict(clip["people"][0], role="p0"), dict(clip["people"][1], role="p1"), dict(third, role="p2")]
    for p in clip["people"]:
        p.pop("listening")
    b = m.parse(data)
    assert b.clips[0].n_people == 3 and [p.role for p in b.clips[0].people] == ["p0", "p1", "p2"]
    one = copy.deepcopy(raw)
    one["clips"][0]["people"] = [dict(one["clips"][0]["people"][0], role="p0")]
    assert m.parse(one).clips[0].n_people == 1


@pytest.mark.parametrize(
    "mutate, needle",
    [
        (lambda d: d.update(schema="other"), "schema"),
        (lambda d: d.update(schema_version=99), "schema_version"),
        (lambda d: d["clips"][2].update(duration=-1), "clip interact_3: duration"),
        (lambda d: d["clips"][4]["people"][0].update(role="right"), "clip interact_5: people[0].role"),
        (lambda d: d["clips"][1]["people"][1].update(speaking=[[3, 2]]), "clip interact_2: people[1].speaking[0]"),
        (lambda d: d["clips"][1]["people"][1].update(speaking=[[3]]), "clip interact_2: people[1].speaking[0]"),
        (lambda d: d["clips"][6]["people"][1].update(audio="/abs/x.wav"), "clip interact_7: people[1].audio"),
        (lambda d: d["clips"][6]["people"][1].update(pcm_sha256="abc"), "clip interact_7: people[1].pcm_sha256"),
        (lambda d: d["clips"][0]["people"][0].update(listening=[[0, 1]]), "clip interact_1: people[0].listening"),
        (lambda d: d["clips"][8].update(id="interact_1"), "clip interact_1: id: duplicate"),
        (lambda d: d["clips"][3].pop("people"), "clip interact_4: people"),
    ],
)
def test_validation_errors_name_clip_and_field(raw, mutate, needle):
    data = copy.deepcopy(raw)
    mutate(data)
    with pytest.raises(m.ManifestError) as err:
        m.parse(data, source="x.json")
    msg = str(err.value)
    assert msg.startswith("x.json: ") and needle in msg and "\n" not in msg


def test_load_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(m.ManifestError, match="bad.json: not valid JSON"):
        m.load(bad)
    with pytest.raises(m.ManifestError, match="cannot read"):
        m.load(tmp_path / "missing.json")


def test_clip_lookup_suggests(bench):
    with pytest.raises(KeyError, match="did you mean 'interact_11'"):
        bench.clip("interact11")
