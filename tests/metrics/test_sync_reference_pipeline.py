"""The sync metric's ``pipeline="reference"`` option: syncnet_python's one-frame video lag (JPEG k
= source frame k − 1, 376 JPEGs from 375 frames) and its AVI/JPEG re-encodes.

A 25 fps video whose picture leads its own audio by exactly one frame (frame k shows what the
audio says at (k + 1)/25) is scored through the metric contract, from an MP4 written and decoded
by PyAV. The reference pipeline's one-frame delay puts picture and sound back in step: offset 0;
the exact default sees the lead: offset −1 (negative: the audio lags). Two networks:

- a stand-in with a known answer (brightness vs loudness, z-scored per window, as in
  test_syncnet.py) — the offsets are asserted as absolute values;
- SyncNet with random, fully seeded weights (the construction of test_syncnet.py): a random
  network has no notion of sync (its best offset follows the zero padding at the clip ends), so
  with it the lag option is checked to score exactly what the exact pipeline scores on the
  reference's JPEG sequence f0, f0, f1, ….
"""

from __future__ import annotations


import numpy as np
import pytest
import torch

from interactive_eyes.data.manifest import Clip, Person
from interactive_eyes.media.video import iter_frames, write_video
from interactive_eyes.metrics import syncnet as sn
from interactive_eyes.metrics import sync_reference as sref
from interactive_eyes.metrics.base import ClipContext, FaceBox, FrameData
from interactive_eyes.metrics.sync import SyncC
from sync_stand_ins import EnvelopeNet, random_syncnet  # noqa: E402  (shared stand-ins)

torch.set_grad_enabled(False)

FPS = 25
N_FRAMES = 75  # 3 s
BOX = (16.0, 8.0, 112.0, 120.0)  # x0, y0, x1, y1 of the 'face' in a 128 x 128 frame


@pytest.fixture(scope="module")
def leading_video(tmp_path_factory):
    """A 25 fps MP4 whose picture leads its audio by one frame, and its clip."""
    rng = np.random.default_rng(3)
    freqs, phases = rng.uniform(0.7, 3.0, 6), rng.uniform(0, 2 * np.pi, 6)

    def content(t):
        return np.sum(np.sin(2 * np.pi * freqs[:, None] * np.atleast_1d(t)[None] + phases[:, None]), 0)

    duration = N_FRAMES / FPS
    n = int(duration * sn.SAMPLE_RATE)
    ts = np.arange(n) / sn.SAMPLE_RATE
    # MFCC columns 4k..4k+3 cover samples 640k .. 640k+880: centred 27.5 ms after frame k starts
    centre = (1.5 * 160 + 200) / sn.SAMPLE_RATE
    audio = np.clip(rng.normal(0, 1, n) * np.exp(0.5 * content(ts - centre)) * 1500, -32767, 32767).astype(np.int16)
    # frame k shows the content of time (k + 1)/25: one frame ahead of the sound
    levels = np.clip(128 + 25 * content((np.arange(N_FRAMES) + 1) / FPS), 0, 255).astype(np.uint8)
    frames = np.repeat(levels[:, None, None, None], 128, 1).repeat(128, 2).repeat(3, 3)
    path = write_video(tmp_path_factory.mktemp("lead") / "lead.mp4", frames, FPS, audio=audio,
                       audio_rate=sn.SAMPLE_RATE)
    person = Person(role="p0", audio="p0.wav", speaking=((0.0, duration),), listening=())
    return path, Clip(id="lead", duration=duration, people=(person,))


def _score(metric: SyncC, path, clip, frames=None):
    """Score through the contract; ``frames``: RGB frames to feed instead of the file's own (at
    k/25 s), the audio still being the file's."""
    from interactive_eyes.media.video import probe

    ctx = ClipContext(clip=clip, video_path=path, info=probe(path))
    state = metric.start(ctx)
    if frames is None:
        frames = [f.rgb for f in iter_frames(path)]
    for k, rgb in enumerate(frames):
        metric.update(state, FrameData(index=k, time=k / FPS, rgb=rgb, faces=(FaceBox(*BOX),)))
    res = metric.finish(state)
    assert res.status == "ok", res.reason
    return res


def test_lagged_slots_make_376_jpegs_from_375_frames():
    grid = sn.GridState(FPS)
    slots, first = [], True
    times = np.arange(375) / FPS
    placed = []
    for k, t in enumerate(times):  # each frame's slots become known when the next frame arrives
        for s in grid.push(float(t)):
            placed.append((s, k - 1))
    placed += [(s, 374) for s in grid.finish(375 / FPS)]
    for s, k in sorted(placed):
        for j in sref.lagged_slots([s], first):
            slots.append((j, k))
        first = False
    assert len(slots) == 376 and slots[0] == (0, 0) and slots[1] == (1, 0)
    assert all(k == j - 1 for j, k in slots[1:])  # every JPEG k >= 1 shows source frame k - 1
    assert sref.lagged_slots([], True) == [] and sref.lagged_slots([3, 4], False) == [4, 5]


@pytest.mark.parametrize("pipeline", ["reference", "lag"])
def test_a_one_frame_lead_scores_0_with_the_reference_lag_and_minus_1_exactly(leading_video, pipeline):
    path, clip = leading_video
    exact = _score(SyncC(model=EnvelopeNet(), device="cpu"), path, clip)
    ref = _score(SyncC(model=EnvelopeNet(), device="cpu", pipeline=pipeline), path, clip)
    assert exact.details["av_offset"] == -1 and ref.details["av_offset"] == 0
    assert (exact.details["n_slots_25fps"], ref.details["n_slots_25fps"]) == (N_FRAMES, N_FRAMES + 1)
    assert ref.details["pipeline"] == pipeline and exact.details["pipeline"] == "exact"


def test_random_syncnet_lag_equals_the_exact_pipeline_on_the_reference_jpeg_sequence(leading_video):
    """Through the real architecture (random, fully seeded weights): the lag option on frames
    f0, f1, … scores exactly what the exact pipeline scores on the reference's JPEG sequence
    f0, f0, f1, … (JPEG k = frame k − 1). A random network has no notion of sync, so its best
    offset is decided by the zero padding at the clip ends rather than by the content; the
    absolute offsets are asserted with the known-answer network above."""
    path, clip = leading_video
    frames = [f.rgb for f in iter_frames(path)][:40]
    net = random_syncnet(0)

    def run(pipeline, seq):
        return _score(SyncC(model=net, device="cpu", batch_size=40, pipeline=pipeline), path, clip, seq)

    exact, lag, jpegs = run("exact", frames), run("lag", frames), run("exact", [frames[0]] + frames)
    for key in ("sync_c", "sync_d", "av_offset", "n_windows", "n_slots_25fps"):
        assert lag.details[key] == jpegs.details[key], key
    assert lag.value == jpegs.value and lag.details["n_windows"] == 36
    assert lag.value != exact.value  # the lag changes what the network sees: the check can fail


def test_reencoder_is_the_reference_quality_and_default_params_are_unchanged():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:96, 0:128]
    frames = [np.clip(np.stack([xx + 3 * k, yy * 2, 200 - xx], -1) + rng.normal(0, 2, (96, 128, 3)), 0, 255)
              .astype(np.uint8) for k in range(14)]  # more than one GOP (12)
    enc = sref.Reencoder(128, 96)
    out = [enc.bgr(f) for f in frames]
    err = [np.abs(o[..., ::-1].astype(int) - f).mean() for o, f in zip(out, frames)]
    # q2 is near-lossless on smooth content: a mean error of a few levels, none of it in whole-frame shifts
    assert all(0 < e < 4 for e in err), err
    assert out[0].shape == (96, 128, 3) and out[0].dtype == np.uint8
    with pytest.raises(ValueError, match="odd"):
        sref.Reencoder(127, 96)
    assert "pipeline" not in SyncC(model=EnvelopeNet()).params()  # default cache keys are unchanged
    assert SyncC(model=EnvelopeNet(), pipeline="reference").params()["pipeline"]["video_lag_frames"] == 1
    assert SyncC.version == "1"
    with pytest.raises(ValueError, match="pipeline must be one of exact, reference, lag"):
        SyncC(pipeline="jpeg")


def test_the_real_375_frame_video_becomes_376_slots(test_data):
    """infinitetalk_ref_video.mp4 (458 x 458, 25 fps, 375 frames) is one of the videos the lag was
    measured on (376 JPEGs): through the metric, the reference pipeline sees 376 slots, the exact
    default 375."""
    path = test_data / "talking_heads" / "infinitetalk_ref_video.mp4"
    person = Person(role="p0", audio="p0.wav", speaking=((0.0, 15.0),), listening=())
    clip = Clip(id="infinitetalk", duration=15.0, people=(person,))

    from interactive_eyes.media.video import probe

    box = FaceBox(120.0, 60.0, 340.0, 330.0)
    results = {}
    for pipeline in ("exact", "reference"):
        metric = SyncC(model=EnvelopeNet(), device="cpu", pipeline=pipeline, batch_size=64)
        state = metric.start(ClipContext(clip=clip, video_path=path, info=probe(path)))
        for f in iter_frames(path):
            metric.update(state, FrameData(index=f.index, time=f.time, rgb=f.rgb, faces=(box,)))
        results[pipeline] = metric.finish(state)
    exact, ref = results["exact"], results["reference"]
    assert exact.status == ref.status == "ok", (exact.reason, ref.reason)
    assert (exact.details["n_source_frames"], exact.details["n_slots_25fps"], ref.details["n_slots_25fps"]) == \
        (375, 375, 376)
    # the audio (15 s = 375 frames) bounds the windows: min(F, floor(N/640)) - 5 for both
    assert exact.details["n_windows"] == ref.details["n_windows"] == 370
