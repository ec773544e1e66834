"""Malformed inputs: each gets a failed status with a one-line reason, the other clips score."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from app_helpers import small_manifest

from interactive_eyes.app import engine
from interactive_eyes.app.demo import reference_frame
from interactive_eyes.media.video import write_video

FPS = 12
N = 12
AUDIO = (0.1 * np.sin(np.arange(16000) * 2 * np.pi * 200 / 16000)).astype(np.float32)

CASES = ["ok", "zero_byte", "truncated", "no_video", "no_audio", "one_frame", "misnamed", "no_face",
         "three_faces", "uhd_4k", "vfr", "too_long", "fps_100"]
# clip durations that match each file (1.0 s unless listed): uhd_4k is 6 frames at 12 fps; the
# variable-rate file's last frame starts at 0.9 s (its stream lasts 0.883 s by the container's clock)
DURATIONS = {"uhd_4k": 0.5, "vfr": 0.9}


def _moving(ref, n=N):
    """The two-person frame with a small head-sized shift, so there is motion to measure."""
    for i in range(n):
        yield np.roll(ref, (i % 3) - 1, axis=0)


def _write_vfr(path, frames, times):
    import av

    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=FPS)
        h, w = frames[0].shape[:2]
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.codec_context.time_base = Fraction(1, 1000)
        a = out.add_stream("aac", rate=16000)
        a.layout = "mono"
        for t, img in zip(times, frames):
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            vf.pts, vf.time_base = int(round(t * 1000)), Fraction(1, 1000)
            for p in s.encode(vf):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
        af = av.AudioFrame.from_ndarray(AUDIO[None, :], format="fltp", layout="mono")
        af.sample_rate, af.pts = 16000, 0
        for p in a.encode(af):
            out.mux(p)
        for p in a.encode():
            out.mux(p)


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    import av
    import cv2

    d = tmp_path_factory.mktemp("malformed")
    ref = reference_frame()  # two faces, 832x416
    write_video(d / "ok.mp4", _moving(ref), FPS, audio=AUDIO)
    (d / "zero_byte.mp4").write_bytes(b"")
    data = (d / "ok.mp4").read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) // 3])
    with av.open(str(d / "no_video.mp4"), "w", format="mp4") as out:
        a = out.add_stream("aac", rate=16000)
        a.layout = "mono"
        af = av.AudioFrame.from_ndarray(AUDIO[None, :], format="fltp", layout="mono")
        af.sample_rate, af.pts = 16000, 0
        for p in list(a.encode(af)) + list(a.encode()):
            out.mux(p)
    write_video(d / "no_audio.mp4", _moving(ref), FPS)
    write_video(d / "one_frame.mp4", [ref], FPS, audio=AUDIO)
    write_video(d / "misnamed_.mp4", _moving(ref), FPS, audio=AUDIO)  # should have been misnamed.mp4
    gradient = np.tile(np.linspace(0, 255, 832, dtype=np.uint8)[None, :, None], (416, 1, 3))
    write_video(d / "no_face.mp4", [gradient] * N, FPS, audio=AUDIO)
    # a third face below (faces must stay large relative to the frame for the short-range detector)
    bottom = np.concatenate([ref[:, :416], np.full_like(ref[:, :416], 128)], axis=1)
    three = np.ascontiguousarray(np.concatenate([ref, bottom], axis=0))
    write_video(d / "three_faces.mp4", _moving(three), FPS, audio=AUDIO)
    big = cv2.resize(ref, (3840, 1920), interpolation=cv2.INTER_CUBIC)
    write_video(d / "uhd_4k.mp4", _moving(big, 6), FPS, audio=AUDIO, crf=30)
    times = [0.0, 0.05, 0.1, 0.25, 0.3, 0.5, 0.55, 0.7, 0.75, 0.9]
    _write_vfr(d / "vfr.mp4", list(_moving(ref, len(times))), times)
    from app_helpers import write_clip

    write_clip(d / "too_long.mp4", n=24, fps=FPS)  # 2 s for a 1 s clip: would count 1 s past its end
    write_clip(d / "fps_100.mp4", n=100, fps=100)  # 1 s, but at 100 fps (motion sums grow with the rate)
    (d / "notes.txt").write_text("not a video")
    bench = small_manifest(len(CASES), duration=1.0)
    # rename the manifest's clips c0.. to the case names
    from dataclasses import replace

    from interactive_eyes.data.manifest import Benchmark

    clips = tuple(replace(c, id=name, duration=DURATIONS.get(name, c.duration)) for c, name in zip(bench.clips, CASES))
    bench = Benchmark(bench.name, bench.version, clips, bench.source, None, bench.sha256)
    return engine.score(d, benchmark=bench, metrics=["interactivity"], progress=False)


def _status(res, clip):
    m = res["metrics"]["interactivity"]
    if clip in m["per_clip"]:
        return "ok", None
    reason = next(f["reason"] for f in m["failures"] if f["clip"] == clip)
    return "failed", reason


@pytest.mark.parametrize("clip, needle", [
    ("zero_byte", "empty"),
    ("truncated", "truncated.mp4"),
    ("no_video", "no video stream"),
    ("no_audio", "no audio stream"),
    ("one_frame", "only 1 frame"),
    ("misnamed", "missing file"),
    ("no_face", "fewer faces than people"),
    ("three_faces", "more faces than people"),
    ("too_long", "duration 2.000 s vs the clip's 1.000 s: 12.00 frames longer (allowed: 1 frame longer, 4 shorter"),
    ("fps_100", "frame rate 100.000 fps outside the supported [10, 60]"),
])
def test_malformed_clip_fails_with_one_line_reason(scored, clip, needle):
    status, reason = _status(scored, clip)
    assert status == "failed"
    assert needle in reason and "\n" not in reason


@pytest.mark.parametrize("clip", ["ok", "uhd_4k", "vfr"])
def test_good_clips_still_score(scored, clip):
    status, reason = _status(scored, clip)
    assert status == "ok", reason
    assert scored["metrics"]["interactivity"]["per_clip"][clip] > 0


def test_counts_and_extra_files(scored):
    m = scored["metrics"]["interactivity"]
    assert (m["n_ok"], m["n_failed"], m["n_expected"]) == (3, len(CASES) - 3, len(CASES))
    extras = {e["file"]: e["did_you_mean"] for e in scored["extra_files"]}
    assert extras == {"misnamed_.mp4": "misnamed.mp4", "notes.txt": None}
