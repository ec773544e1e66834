"""Timecodes: the released ``seconds.frames`` values at 30 fps. ``.29`` is the last frame of a
second and ``.30`` is no timecode; the whole two-decimal grid is checked against exact fractions."""

from __future__ import annotations

import json
import os
from fractions import Fraction

import pytest

from interactive_eyes.data import manifest as m
from interactive_eyes.data import release


@pytest.mark.parametrize("seconds", [0, 1, 4, 7, 59, 3599, 99_999])
def test_every_two_decimal_value_against_exact_fractions(seconds):
    for ff in range(100):
        value = float(f"{seconds}.{ff:02d}")
        if ff < 30:
            exact = Fraction(seconds) + Fraction(ff, 30)
            assert m.timecode_to_seconds(value) == pytest.approx(float(exact), rel=0, abs=1e-9), value
        else:
            with pytest.raises(ValueError, match=rf"is not a seconds.frames timecode at 30 fps \(frame {ff} >= 30\)"):
                m.timecode_to_seconds(value)


@pytest.mark.parametrize("value, fps, expected", [
    (4.29, 30, 4 + 29 / 30),  # the last frame of second 4
    (7.29, 30, 7 + 29 / 30),  # interact_9 left ends at 7.29 in the release
    (0.29, 30, 29 / 30),
    (0.0, 30, 0.0),
    (4, 30, 4.0),
    (4.24, 25, 4 + 24 / 25),
    (4.99, 100, 4.99),
    (0.0, 1, 0.0),
])
def test_accepted_boundaries(value, fps, expected):
    assert m.timecode_to_seconds(value, fps) == pytest.approx(expected, rel=0, abs=1e-12)


@pytest.mark.parametrize("value, fps, message", [
    (4.30, 30, "4.3 is not a seconds.frames timecode at 30 fps (frame 30 >= 30)"),
    (0.30, 30, "0.3 is not a seconds.frames timecode at 30 fps (frame 30 >= 30)"),
    (59.99, 30, "59.99 is not a seconds.frames timecode at 30 fps (frame 99 >= 30)"),
    (4.25, 25, "4.25 is not a seconds.frames timecode at 25 fps (frame 25 >= 25)"),
    (0.01, 1, "0.01 is not a seconds.frames timecode at 1 fps (frame 1 >= 1)"),
    (4.295, 30, "4.295 is not a seconds.frames timecode (more than two decimals)"),
    (4.001, 30, "4.001 is not a seconds.frames timecode (more than two decimals)"),
    (-0.01, 30, "-0.01 is not a seconds.frames timecode (need a number from 0 to 1e+06)"),
    (float("nan"), 30, "nan is not a seconds.frames timecode (need a number from 0 to 1e+06)"),
    (float("inf"), 30, "inf is not a seconds.frames timecode (need a number from 0 to 1e+06)"),
    (1e300, 30, "1e+300 is not a seconds.frames timecode (need a number from 0 to 1e+06)"),
    (True, 30, "True is not a seconds.frames timecode (need a number from 0 to 1e+06)"),
    ("4.19", 30, "'4.19' is not a seconds.frames timecode (need a number from 0 to 1e+06)"),
    (4.19, 0, "timecode frame rate must be an integer from 1 to 100, got 0"),
    (4.19, 30.0, "timecode frame rate must be an integer from 1 to 100, got 30.0"),
    (4.19, 101, "timecode frame rate must be an integer from 1 to 100, got 101"),
])
def test_rejected_boundaries(value, fps, message):
    with pytest.raises(ValueError) as err:
        m.timecode_to_seconds(value, fps)
    assert str(err.value) == message


def test_float_noise_does_not_shift_a_frame():
    assert 4.19 * 100 != 419  # 418.99999999999994: a truncating reader would get frame 18
    assert m.timecode_to_seconds(4.19) == pytest.approx(4 + 19 / 30, abs=1e-12)
    assert m.timecode_to_seconds(0.1 + 0.19) == pytest.approx(29 / 30, abs=1e-12)  # 0.29000000000000004


def test_convert_segments():
    assert release.convert_segments([[0.0, 0.0]]) == []  # the release's "never speaks"
    assert release.convert_segments([[4.19, 7.11]]) == [[4 + 19 / 30, 7 + 11 / 30]]
    assert release.convert_segments([[1.29, 2.0], [3.0, 3.0]]) == [[1 + 29 / 30, 2.0]]  # empty turns dropped
    with pytest.raises(ValueError) as err:
        release.convert_segments([[1.0, 2.0], [4.29, 4.30]])
    assert str(err.value) == "[1]: 4.3 is not a seconds.frames timecode at 30 fps (frame 30 >= 30)"
    with pytest.raises(ValueError, match=r"^\[0\]: \[5.0, 4.0\] ends before it starts$"):
        release.convert_segments([[5.0, 4.0]])
    with pytest.raises(ValueError, match=r"^\[0\]: \[1.0\] is not a \[start, end\] pair$"):
        release.convert_segments([[1.0]])


def test_shipped_annotations_use_the_last_frame_but_never_30():
    raw = [v for c in m.load() for p in c.people for s in p.speaking_raw for v in s]
    frames = {round(v * 100) % 100 for v in raw}
    assert max(frames) == 29 and 30 not in frames


def _release_copy(ie_root, tmp_path, edit):
    """The shared release as links, with an edited copy of its annotation file."""
    root = tmp_path / "release"
    root.mkdir()
    for name in ("audio_left", "audio_right"):
        os.symlink(ie_root / name, root / name)
    ann = json.loads((ie_root / release.ANNOTATION_FILE).read_text())
    edit(ann)
    (root / release.ANNOTATION_FILE).write_text(json.dumps(ann))
    return root


def test_build_manifest_names_the_bad_timecode(ie_root, tmp_path):
    root = _release_copy(ie_root, tmp_path, lambda a: a["interact_9.mp4"].update(left=[[6.0, 7.30]]))
    with pytest.raises(m.ManifestError) as err:
        release.build_manifest(root, release.read_sha256_list(ie_root / "original_sha256.txt"))
    assert str(err.value) == (f"{root / release.ANNOTATION_FILE}: interact_9.mp4: left[0]: 7.3 is not a "
                              "seconds.frames timecode at 30 fps (frame 30 >= 30)")


def test_build_manifest_names_a_missing_clip(ie_root, tmp_path):
    root = _release_copy(ie_root, tmp_path, lambda a: a.pop("interact_5.mp4"))
    with pytest.raises(m.ManifestError, match=r"speaker_duration.json: interact_5.mp4: missing, or without 'left'"):
        release.build_manifest(root, release.read_sha256_list(ie_root / "original_sha256.txt"))
