"""Interactivity with tracking on demand: a person's face is read only around their listening
time (faces.track step 6). On arrays the value is exactly the every-frame value (the margin covers
every test a listening frame goes through); on interact_11 the tracker's own differences stay
small, and issue 10's camera targets still hold."""

from __future__ import annotations

import numpy as np
import pytest

from interactive_eyes.data.manifest import Clip, Person, complement
from interactive_eyes.media.video import VideoInfo
from interactive_eyes.metrics import interactivity as ia
from interactive_eyes.metrics.base import ClipContext

FPS = 25.0


def _clip(speaking, duration):
    people = tuple(Person(role=f"p{k}", audio=f"p{k}.wav", speaking=tuple(s), listening=complement(s, duration))
                   for k, s in enumerate(speaking))
    return Clip(id="synthetic", duration=duration, people=people)


def _ctx(clip, fps=FPS):
    n = int(round(clip.duration * fps))
    info = VideoInfo(path="synthetic.mp4", width=640, height=480, fps=fps, n_frames=n, duration=n / fps,
                     has_audio=False, audio_rate=None, audio_duration=None, codec="h264")
    return ClipContext(clip=clip, video_path="synthetic.mp4", info=info)


def _observed(clip, n, fps=FPS):
    wanted = ia.Interactivity().tracking_demand(_ctx(clip, fps))
    return np.array([wanted(t, t / fps) for t in range(n)])


def test_a_person_is_wanted_while_listening_and_for_the_margin_around_it():
    clip = _clip([[(1.0, 3.0)], [(0.0, 1.0), (3.0, 4.0)]], 4.0)
    wanted = ia.Interactivity().tracking_demand(_ctx(clip))
    margin = ia.STEP + ia.DEMAND_MARGIN_FRAMES / FPS  # 0.28 s at 25 fps
    assert margin == pytest.approx(0.28)
    assert wanted(0, 0.5) == (True, False)  # p0 listens, p1 speaks (well inside)
    assert wanted(0, 1.0 + margin - 0.01) == (True, True)  # p0 just started speaking: still read
    assert wanted(0, 1.0 + margin) == (False, True)
    assert wanted(0, 3.0 - margin - 0.01) == (False, True)
    assert wanted(0, 3.0 - margin) == (True, True)  # about to listen again
    assert wanted(0, 3.5) == (True, False)
    assert ia.Interactivity(mode="paper").tracks_on_demand() is False
    assert ia.Interactivity().tracks_on_demand() is True


def _tracks(n, seed=0):
    """Two people's 22 points: slow drift, landmark noise, blinks, and 1-3 frame glitches and a
    gap placed right at the edges of their listening time (face units, side 224)."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(60, 160, size=(2, 22, 2))
    walk = np.cumsum(rng.normal(0, 0.3, size=(n, 2, 1, 2)), axis=0)
    lm = base[None] + walk + rng.normal(0, 0.2, size=(n, 2, 22, 2))
    blinks = rng.random((n, 2)) < 0.05
    lm[:, :, :6, 1] += 3.0 * blinks[:, :, None]
    return lm


@pytest.mark.parametrize("fps", [24.0, 25.0, 30.0])
def test_on_demand_tracks_give_exactly_the_every_frame_value(fps):
    duration = 8.0
    n = int(duration * fps)
    clip = _clip([[(1.0, 3.2), (5.0, 6.5)], [(0.0, 1.0), (3.2, 5.0), (6.5, 8.0)]], duration)
    lm = _tracks(n)
    edge = lambda t: int(round(t * fps))  # noqa: E731  frame index of a segment edge
    # 3-frame glitches straddling the edges of p0's listening time: judging them needs frames of
    # p0's speaking turns (with the 1/25 s step alone as the margin they count: measured)
    lm[edge(1.0) - 2: edge(1.0) + 1, 0] += 25.0
    lm[edge(3.2) - 1: edge(3.2) + 2, 0] -= 30.0
    lm[edge(1.0) + 1: edge(1.0) + 3, 1] = np.nan  # a gap just after p1 starts listening
    lm[edge(1.0) + 3, 1] += 20.0  # ... whose last frame jumps (an unsupported gap edge)
    speaking = [p.speaking for p in clip.people]
    sides = np.full(2, 224.0)
    full = ia.interactivity(lm, fps, speaking, face_sides=sides)
    obs = _observed(clip, n, fps)
    assert 0.3 < obs.mean() < 0.8  # a speaker's frames well inside their turns are not read
    demand = ia.interactivity(np.where(obs[:, :, None, None], lm, np.nan), fps, speaking, face_sides=sides,
                              observed=obs)
    assert full.ok and demand.ok
    assert demand.value == pytest.approx(full.value, rel=1e-12)
    assert demand.per_person == pytest.approx(full.per_person, rel=1e-12)
    for a, b in zip(full.details["per_person"], demand.details["per_person"]):
        assert a["n_listening_steps_used"] == b["n_listening_steps_used"]
        assert b["n_frames_read"] < a["n_frames_read"] == n
        assert a["n_missing_frames"] == b["n_missing_frames"]  # frames not read are not missing


def test_the_visible_share_is_over_the_frames_read():
    n = 200
    clip = _clip([[(0.0, 5.0)], []], n / FPS)  # p0 speaks for 5 of 8 s
    lm = _tracks(n, seed=1)
    obs = _observed(clip, n)
    sparse = np.where(obs[:, :, None, None], lm, np.nan)
    speaking = [p.speaking for p in clip.people]
    assert obs[:, 0].mean() < 0.5
    not_said = ia.interactivity(sparse, FPS, speaking, face_sides=np.full(2, 224.0))
    assert not not_said.ok and "has landmarks in" in not_said.reason  # read as missing: < 50% visible
    said = ia.interactivity(sparse, FPS, speaking, face_sides=np.full(2, 224.0), observed=obs)
    assert said.ok and said.details["per_person"][0]["n_missing_frames"] == 0
    with pytest.raises(ValueError, match="observed must be"):
        ia.interactivity(sparse, FPS, speaking, face_sides=np.full(2, 224.0), observed=obs[:, :1])


# ------------------------------------------------------------------------------ interact_11


@pytest.fixture(scope="module")
def clip11_on_demand(interact_11):
    """interact_11, the same video with a +-1 px shake, and a slow pan: tracked on demand and
    every frame, through the engine's path (analyze_clip) and the tracker directly."""
    import dataclasses

    from interactive_eyes.app.engine import EngineOptions, analyze_clip
    from interactive_eyes.data.manifest import load
    from interactive_eyes.media.video import probe

    clip = load().clip("interact_11")
    info = probe(interact_11)
    clip = dataclasses.replace(clip, duration=info.duration)  # the file is 8.542 s for a clip of 8.597 s
    out = {}
    for tracking in ("auto", "every-frame"):
        m = ia.Interactivity()
        out[tracking] = analyze_clip(interact_11, clip, [m], options=EngineOptions(allow_silent=True, tracking=tracking),
                                     info=info)[m.name]
    return clip, out


def test_interact_11_on_demand_against_every_frame(clip11_on_demand):
    clip, res = clip11_on_demand
    demand, full = res["auto"], res["every-frame"]
    assert demand.status == full.status == "ok"
    assert demand.details["tracking"] == "on-demand" and full.details["tracking"] == "every-frame"
    tracks = demand.details["face_tracks"]
    # each speaker is followed without the mesh model for most of their turn (205 frames; the left
    # person speaks from 4.53 s, the right until 4.53 s)
    assert all(60 <= f <= 100 for f in tracks["n_followed_only"])
    assert full.details["face_tracks"]["n_followed_only"] == [0, 0]
    # the same listening steps; the value differs only through the tracker's state (ROIs, camera
    # boxes, the per-person scale from the frames read): measured 0.6871 against 0.6847
    for role in ("left", "right"):
        assert (demand.details["per_person"][role]["n_listening_steps_used"]
                == full.details["per_person"][role]["n_listening_steps_used"])
        assert demand.per_person[role] == pytest.approx(full.per_person[role], rel=0.05)
    assert demand.value == pytest.approx(full.value, rel=0.02)
    assert demand.value == pytest.approx(0.6871, abs=1e-4)


def _on_demand(frames, times, fps, clip):
    """Track in memory as the engine does on demand, and score: (ClipResult, tracker summary)."""
    from interactive_eyes.faces.track import FaceTracker
    from interactive_eyes.metrics.base import FrameData

    m = ia.Interactivity()
    info = VideoInfo(path="x.mp4", width=frames.shape[2], height=frames.shape[1], fps=fps, n_frames=len(frames),
                     duration=len(frames) / fps, has_audio=False, audio_rate=None, audio_duration=None, codec="h264")
    ctx = ClipContext(clip=clip, video_path="x.mp4", info=info)
    wanted, state = m.tracking_demand(ctx), m.start(ctx)
    with FaceTracker(clip.n_people) as tr:
        for k, (f, t) in enumerate(zip(frames, times)):
            w = wanted(k, float(t))
            boxes, lms = tr.update(f, float(t), want=w)
            m.update(state, FrameData(index=k, time=float(t), rgb=f, faces=boxes, landmarks=lms,
                                      landmark_backend="mediapipe-tasks", wanted=w))
        return m.finish(state), tr.summary()


def test_interact_11_camera_targets_hold_on_demand(interact_11, clip11_on_demand):
    """Issue 10's camera targets in the default (on-demand) pipeline: a +-1 px whole-frame shake
    changes clip 11's value by < 10 %, and so does a 1 px/frame pan against the same window held still."""
    import cv2

    from interactive_eyes.media.video import read_frames

    clip, res = clip11_on_demand
    frames, times = read_frames(interact_11)
    h, w = frames.shape[1:3]
    base, _ = _on_demand(frames, times, res["auto"].details["fps"], clip)
    assert base.value == pytest.approx(res["auto"].value, abs=1e-9)  # the same as through the engine
    shake = np.random.default_rng(0).integers(-1, 2, size=(len(frames), 2)).astype(np.float32)
    shaken = np.stack([cv2.warpAffine(f, np.float32([[1, 0, dx], [0, 1, dy]]), (w, h), borderMode=cv2.BORDER_REFLECT_101)
                       for f, (dx, dy) in zip(frames, shake)])
    r, summary = _on_demand(shaken, times, base.details["fps"], clip)
    assert summary.status == "ok" and min(summary.n_followed_only) > 50
    assert r.details["camera"]["compensated"] is True
    assert r.value == pytest.approx(base.value, rel=0.10)
    margin = 50
    offset = [margin - abs(k % (2 * margin) - margin) for k in range(len(frames))]
    still, _ = _on_demand(np.ascontiguousarray(frames[:, :, : w - margin]), times, base.details["fps"], clip)
    panned, _ = _on_demand(np.stack([f[:, o: o + w - margin] for f, o in zip(frames, offset)]), times,
                           base.details["fps"], clip)
    assert panned.value == pytest.approx(still.value, rel=0.10)
