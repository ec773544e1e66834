"""The ``sync`` metric (Sync-C / Sync-C*) through the metric contract.

- streaming (25 fps grid, 6-slot-late crops from a small frame ring, gap interpolation, track
  splitting, batched windows) equals the same recipe run offline on the whole clip;
- Sync-C* in its three modes equals its definition computed offline from the full matrices;
- on interact_11.mp4 (random SyncNet weights) the kept windows of each person are exactly the
  5-frame windows inside their manifest speaking seconds (indices only, values are meaningless);
- the ``s3fd`` detector path (tracking, min_track, longest track) with a scripted detector.

Most tests use a cheap stand-in network (pixel- and MFCC-sensitive), because what they check is
the plumbing; the network itself is checked against syncnet-python in test_syncnet.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interactive_eyes.data.manifest import Clip, Person, complement
from interactive_eyes.media.audio import load_audio
from interactive_eyes.media.video import iter_frames, probe, read_frames, write_video
from interactive_eyes.metrics import syncnet as sn
from interactive_eyes.metrics.base import ClipContext, FaceBox, FrameData
from interactive_eyes.metrics.s3fd import interpolate_track
from interactive_eyes.metrics.sync import SyncC, window_speaking

torch.set_grad_enabled(False)


class ProbeNet(torch.nn.Module):
    """Stand-in for SyncNet: video embedding = 4x4 average-pooled crops of the 5 frames, audio
    embedding = a fixed random projection of the 13 x 20 MFCC window. Any change of a crop pixel
    or an MFCC value changes the distances."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.register_buffer("proj", torch.randn(13 * 20, 240, generator=g) / 400)

    def embed_video(self, x):
        n = x.shape[0]
        return torch.nn.functional.adaptive_avg_pool3d(x, (5, 4, 4)).reshape(n, -1) / 255

    def embed_audio(self, m):
        return m.reshape(m.shape[0], -1) @ self.proj


def _voice(duration, seed, sr=sn.SAMPLE_RATE):
    rng = np.random.default_rng(seed)
    n = int(round(duration * sr))
    ts = np.arange(n) / sr
    env = np.interp(ts, np.linspace(0, duration, 40), np.clip(rng.random(40) * 1.5 - 0.3, 0, 1))
    voice = sum(np.sin(2 * np.pi * 130 * k * ts + k) / k for k in range(1, 7)) * env * 6000
    return np.clip(voice + rng.normal(0, 150, n), -32768, 32767).astype(np.int16)


def _scene(n_frames, fps, faces_fn, size=(240, 320), seed=0):
    """Frames of a textured background with skin-coloured faces at ``faces_fn(i) -> [box, ...]``."""
    rng = np.random.default_rng(seed)
    h, w = size
    bg = np.kron(rng.random((h // 20, w // 20, 3)), np.ones((20, 20, 1))) * 120 + 60
    yy, xx = np.mgrid[0:h, 0:w]
    frames = []
    for i in range(n_frames):
        img = bg.copy()
        for k, b in enumerate(faces_fn(i)):
            if b is None:
                continue
            cx, cy, rx, ry = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2, (b[2] - b[0]) / 2, (b[3] - b[1]) / 2
            img[((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 < 1] = [200 - 30 * k, 160, 140]
            mouth = ((xx - cx) / (0.4 * rx)) ** 2 + ((yy - cy - 0.5 * ry) / (0.05 * ry + 0.2 * ry * abs(np.sin(i * 0.7 + k)))) ** 2 < 1
            img[mouth] = [50, 20, 30]
        frames.append(np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8))
    return np.stack(frames)


def _box(i, x0=100.0, y0=60.0, side=90.0, speed=0.6):
    x = x0 + speed * i + 3 * np.sin(i / 5)
    return np.array([x, y0 + 2 * np.cos(i / 7), x + side, y0 + 1.2 * side])


def _person(role, audio, speaking, duration):
    return Person(role=role, audio=audio, speaking=tuple(speaking), listening=complement(speaking, duration))


def _run(metric, ctx, boxes_per_frame, path):
    state = metric.start(ctx)
    for f in iter_frames(path):
        faces = tuple(None if b is None else FaceBox(*b) for b in boxes_per_frame[f.index])
        metric.update(state, FrameData(index=f.index, time=f.time, rgb=f.rgb, faces=faces))
    return metric.finish(state)


# --------------------------------------------------------------------------- offline reference


def _offline_tracks(slot_boxes):
    """Tracks of one person from per-slot boxes (None = missing): split where a gap exceeds 25
    slots, interpolated between detections (the reference's rules, applied to the whole clip)."""
    dets = [j for j, b in enumerate(slot_boxes) if b is not None]
    runs, cur = [], []
    for j in dets:
        if cur and j - cur[-1] > 25:
            runs.append(cur)
            cur = []
        cur.append(j)
    if cur:
        runs.append(cur)
    return [interpolate_track(r, [slot_boxes[j] for j in r]) for r in runs]


def _offline_crops(bgr_slots, slots, boxes):
    smooth = sn.smooth_boxes(boxes)
    return np.stack([sn.crop_face(bgr_slots[j], *smooth[k]) for k, j in enumerate(slots)])


def _slots_of(path):
    rgb, times = read_frames(path)
    info = probe(path)
    idx = sn.select_frames(times, end_time=times[-1] + 1 / info.fps)
    return idx, np.ascontiguousarray(rgb[..., ::-1])


# --------------------------------------------------------------------------- single person


@pytest.mark.parametrize("gap", ["short_gap", "long_gap"])
def test_single_person_streaming_equals_offline_recipe(gap, tmp_path):
    n, fps = 96, 24.0
    missing = set(range(20, 28)) if gap == "short_gap" else set(range(30, 58))  # 8 or 28 source frames

    def box(i):  # the head moves 36 px right while the detector misses it (frames 20-27)
        return _box(i) + np.array([36.0, 0, 36.0, 0]) * min(max(i - 19, 0), 9) / 9

    frames = _scene(n, fps, lambda i: [box(i)])
    audio = _voice(n / fps, seed=1)
    path = write_video(tmp_path / "one.mp4", frames, fps, audio=audio, audio_rate=sn.SAMPLE_RATE)
    boxes = [[None if i in missing else box(i)] for i in range(n)]
    clip = Clip(id="one", duration=n / fps, people=(_person("p0", "x.wav", [(0.0, n / fps)], n / fps),))
    ctx = ClipContext(clip=clip, video_path=path, info=probe(path))
    net = ProbeNet()
    result = _run(SyncC(model=net, batch_size=7), ctx, boxes, path)
    assert result.status == "ok", result.reason

    idx, bgr = _slots_of(path)
    assert result.details["n_slots_25fps"] == len(idx) == 100  # 96 frames at 24 fps -> 100 slots
    bgr_slots = bgr[idx]
    tracks = _offline_tracks([boxes[i][0] for i in idx])
    assert len(result.details["tracks"]) == len(tracks) == (1 if gap == "short_gap" else 2)
    samples = load_audio(path, sn.SAMPLE_RATE, dtype="int16")
    evals = []
    for (slots, tboxes), rec in zip(tracks, result.details["tracks"]):
        assert rec["start_slot"] == slots[0] and rec["n_slots"] == len(slots)
        ev = sn.evaluate_crops(net, _offline_crops(bgr_slots, slots, tboxes), samples[slots[0] * 640 : (slots[-1] + 1) * 640])
        assert rec["sync_c"] == pytest.approx(ev.score.confidence, abs=1e-5)
        assert rec["sync_d"] == pytest.approx(ev.score.min_dist, abs=1e-5)
        assert rec["av_offset"] == ev.score.offset
        evals.append((len(slots), ev.score))
    best = max(evals, key=lambda e: e[0])[1]  # the longest track gives the value
    assert result.value == pytest.approx(best.confidence, abs=1e-5)
    assert result.details["sync_d"] == pytest.approx(best.min_dist, abs=1e-5)
    # memory: frames are held only for the 6-slot smoothing delay (+ a gap still open)
    assert result.details["max_frames_held"] <= 6 + 25 + 2


# --------------------------------------------------------------------------- Sync-C*


@pytest.fixture(scope="module")
def two_person(tmp_path_factory):
    """80 frames at 25 fps (3.2 s); left speaks 0-1.52 s, right 1.52-3.2 s; own audio tracks (48 kHz
    stereo int16 WAV, like the release) in a data root."""
    from scipy.io import wavfile

    root = tmp_path_factory.mktemp("ie")
    n, fps = 80, 25.0
    duration = n / fps
    frames = _scene(n, fps, lambda i: [_box(i, 30, 70, 80, 0.3), _box(i, 190, 60, 85, -0.2)], seed=3)
    path = write_video(root / "two.mp4", frames, fps)
    for role, seed in (("left", 11), ("right", 12)):
        (root / f"audio_{role}").mkdir()
        mono16 = _voice(duration, seed)
        mono48 = np.repeat(mono16, 3)  # sample-and-hold to 48 kHz: resampled back by load_audio
        wavfile.write(root / f"audio_{role}" / f"two_{role}.wav", 48000, np.stack([mono48, mono48], 1))
    boxes = [[_box(i, 30, 70, 80, 0.3), _box(i, 190, 60, 85, -0.2)] for i in range(n)]
    return root, path, boxes, duration


def _two_person_clip(duration, left=((0.0, 1.52),), right=((1.52, 3.2),)):  # 1.52 s = slot 38 exactly
    return Clip(
        id="two",
        duration=duration,
        people=(
            _person("left", "audio_left/two_left.wav", list(left), duration),
            _person("right", "audio_right/two_right.wav", list(right), duration),
        ),
    )


def _offline_person(net, ctx, k, boxes, path, mode):
    """Sync-C* of person k computed offline from the whole track's distance matrix."""
    idx, bgr = _slots_of(path)
    (slots, tboxes), = _offline_tracks([boxes[i][k] for i in idx])
    crops = _offline_crops(bgr[idx], slots, tboxes)
    audio = ctx.person_audio(k, sn.SAMPLE_RATE, dtype="int16")
    segs = ctx.clip.people[k].speaking
    if mode == "segment":
        sp = [any(s <= j / 25 < e for s, e in segs) for j in range(len(slots))]  # one run per person here
        a = sp.index(True)
        b = len(sp) - sp[::-1].index(True)
        ev = sn.evaluate_crops(net, crops[a:b], audio[a * 640 : b * 640])
        return ev.score.confidence, ev.score.n_windows
    ev = sn.evaluate_crops(net, crops, audio)
    kept = [w for w in range(ev.dists.shape[0]) if window_speaking(segs, w)]
    if mode == "mask":
        return sn.score_distances(ev.dists[kept]).confidence, len(kept)
    return float(np.mean(ev.framewise[kept])), len(kept)


@pytest.mark.parametrize("mode", ["mask", "segment", "framewise"])
def test_sync_star_modes_equal_their_definitions(mode, two_person):
    root, path, boxes, duration = two_person
    ctx = ClipContext(clip=_two_person_clip(duration), video_path=path, info=probe(path), data_root=root)
    net = ProbeNet()
    result = _run(SyncC(model=net, sync_star_mode=mode), ctx, boxes, path)
    assert result.status == "ok", result.reason
    assert result.details["sync_star_mode"] == mode
    people = result.details["people"]
    # left speaks on slots 0..37 (half-open: 38/25 = 1.52 is not < 1.52), right on 38..79; 75 windows
    if mode == "segment":
        assert people["left"]["kept_windows"] == [[0, 33]]  # the cut clip of 38 frames has 33 windows
        assert people["right"]["kept_windows"] == [[38, 75]]
    else:
        assert people["left"]["kept_windows"] == [[0, 34]]
        assert people["right"]["kept_windows"] == [[38, 75]]
    values = []
    for k, role in enumerate(("left", "right")):
        expected, n_rows = _offline_person(net, ctx, k, boxes, path, mode)
        assert result.per_person[role] == pytest.approx(expected, abs=1e-5)
        assert people[role]["n_windows"] == n_rows
        values.append(expected)
    assert result.value == pytest.approx(np.mean(values), abs=1e-5)
    assert result.details["sync_d"] == pytest.approx(np.mean([people[r]["sync_d"] for r in ("left", "right")]))
    assert "sync_d" in SyncC.secondary
    if mode == "mask":  # only the kept windows were embedded: 34 + 37 + the dropped last window
        assert result.details["n_video_windows_embedded"] <= 34 + 37 + 1


def test_window_weighting_and_silent_or_unseen_people(two_person):
    root, path, boxes, duration = two_person
    net = ProbeNet()
    ctx = ClipContext(clip=_two_person_clip(duration), video_path=path, info=probe(path), data_root=root)
    per_person = _run(SyncC(model=net), ctx, boxes, path)
    by_window = _run(SyncC(model=net, sync_star_weighting="window"), ctx, boxes, path)
    w = np.array([34, 37])
    v = np.array([per_person.per_person["left"], per_person.per_person["right"]])
    assert by_window.value == pytest.approx(float(np.sum(w * v) / w.sum()), abs=1e-6)
    assert by_window.value != pytest.approx(per_person.value, abs=1e-6)

    # a person who never speaks ([[0, 0]] in the release) is left out of the mean
    silent = ClipContext(clip=_two_person_clip(duration, left=()), video_path=path, info=probe(path), data_root=root)
    r = _run(SyncC(model=net), silent, boxes, path)
    assert r.status == "ok" and r.per_person["left"] is None
    assert r.value == pytest.approx(r.per_person["right"])
    assert r.details["people"]["left"]["reason"] == "does not speak"

    # a speaker whose face is never found while speaking fails the clip (no silent drop)
    hidden = [[b[0], b[1] if i < 30 else None] for i, b in enumerate(boxes)]
    r = _run(SyncC(model=net), ctx, hidden, path)
    assert r.status == "failed" and r.value is None
    assert "right" in r.reason and "speaking" in r.reason
    assert r.per_person["left"] == pytest.approx(per_person.per_person["left"], abs=1e-6)


def test_check_and_options(two_person, tmp_path):
    root, path, boxes, duration = two_person
    clip = _two_person_clip(duration)
    assert "data root" in SyncC(model=ProbeNet()).check(ClipContext(clip=clip, video_path=path, info=probe(path)))
    assert "single-person" in SyncC(model=ProbeNet(), detector="s3fd").check(
        ClipContext(clip=clip, video_path=path, info=probe(path), data_root=root)
    )
    single = Clip(id="s", duration=duration, people=(_person("p0", "x.wav", [(0.0, duration)], duration),))
    assert "no audio stream" in SyncC(model=ProbeNet()).check(ClipContext(clip=single, video_path=path, info=probe(path)))
    with pytest.raises(ValueError, match="sync_star_mode must be one of mask, segment, framewise"):
        SyncC(sync_star_mode="masked")
    params = SyncC(model=ProbeNet(), sync_star_mode="segment").params()
    assert params["sync_star_mode"] == "segment" and params["fps"] == 25 and params["crop"]["box_medfilt"] == 13
    # frames whose time does not increase fail the clip with a reason
    ctx = ClipContext(clip=clip, video_path=path, info=probe(path), data_root=root)
    m = SyncC(model=ProbeNet())
    st = m.start(ctx)
    rgb = np.zeros((240, 320, 3), np.uint8)
    m.update(st, FrameData(index=0, time=0.0, rgb=rgb, faces=(None, None)))
    m.update(st, FrameData(index=1, time=0.0, rgb=rgb, faces=(None, None)))
    r = m.finish(st)
    assert r.status == "failed" and "does not increase" in r.reason


# --------------------------------------------------------------------------- s3fd option


class ScriptedDetector:
    """Replays detections per call (one call per decoded source frame that reaches the grid)."""

    def __init__(self, dets):
        self.dets = list(dets)
        self.calls = 0

    def detect(self, rgb):
        d = self.dets[self.calls]
        self.calls += 1
        return np.asarray(d, dtype=np.float64).reshape(-1, 5)


def test_s3fd_option_tracks_filters_and_scores_the_longest(tmp_path):
    n, fps = 72, 24.0
    frames = _scene(n, fps, lambda i: [_box(i, side=120)])
    path = write_video(tmp_path / "s.mp4", frames, fps, audio=_voice(n / fps, 4), audio_rate=sn.SAMPLE_RATE)
    dets = []
    for i in range(n):
        d = [list(_box(i, side=120)) + [0.99]]
        if i in (10, 11, 12):
            d.append([280, 10, 300, 30, 0.95])  # a short spurious track (3 frames)
        dets.append(d)
    single = Clip(id="s", duration=n / fps, people=(_person("p0", "x.wav", [(0.0, n / fps)], n / fps),))
    net = ProbeNet()
    m = SyncC(model=net, detector="s3fd")
    m._s3fd = ScriptedDetector(dets)
    result = _run(m, ClipContext(clip=single, video_path=path, info=probe(path)), [[None]] * n, path)
    assert result.status == "ok", result.reason
    assert m._s3fd.calls == n
    tracks = result.details["tracks"]
    assert len(tracks) == 2
    assert "min_track 50" in tracks[1]["dropped"]  # 10-12 -> slots 10-12: 3 detections
    assert tracks[0]["n_detections"] == 75 and "dropped" not in tracks[0]
    assert result.details["detector"] == "s3fd"

    idx, bgr = _slots_of(path)
    slots = np.arange(75)
    boxes = np.stack([_box(i, side=120) for i in idx])
    samples = load_audio(path, sn.SAMPLE_RATE, dtype="int16")
    ev = sn.evaluate_crops(net, _offline_crops(bgr[idx], slots, boxes), samples[: 75 * 640])
    assert result.value == pytest.approx(ev.score.confidence, abs=1e-5)

    small = SyncC(model=net, detector="s3fd", min_face_size=150)
    small._s3fd = ScriptedDetector(dets)
    r = _run(small, ClipContext(clip=single, video_path=path, info=probe(path)), [[None]] * n, path)
    assert r.status == "failed" and "min_face_size 150" in r.reason


# --------------------------------------------------------------------------- interact_11


def _interact_11_boxes(video):
    """Per-frame boxes of the two people: the shared tracker when present, else MediaPipe face
    detection (bundled with mediapipe 0.10.21) bound left to right."""
    try:
        from interactive_eyes.faces.track import FaceTracker
    except ImportError:
        FaceTracker = None
    out = []
    if FaceTracker is not None:
        tracker = FaceTracker(2, landmarks=None)
        for f in iter_frames(video):
            faces, _ = tracker.update(f.rgb, f.time)
            out.append(tuple(faces))
        return out
    import mediapipe as mp

    with mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5) as fd:
        for f in iter_frames(video):
            h, w = f.rgb.shape[:2]
            boxes = []
            for d in fd.process(f.rgb).detections or []:
                b = d.location_data.relative_bounding_box
                boxes.append(FaceBox(b.xmin * w, b.ymin * h, (b.xmin + b.width) * w, (b.ymin + b.height) * h))
            boxes.sort(key=lambda b: b.center[0])
            out.append(tuple(boxes) if len(boxes) == 2 else (None, None))
    return out


@pytest.mark.slow  # ~50 s on a 2-core machine: S3FD-free, but 214 SyncNet windows per person on CPU
def test_sync_star_masks_on_interact_11(interact_11, ie_root, tmp_path):
    """Random SyncNet weights (seeded: the same network every run): the values mean nothing; the
    kept window indices are the point."""
    from interactive_eyes.data.manifest import load

    clip = load().clip("interact_11")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = sn.SyncNet().eval()
    weights = sn.save_state_dict_like_reference(net, tmp_path / "syncnet_v2.model")
    metric = SyncC(weights_path=weights)
    ctx = ClipContext(clip=clip, video_path=interact_11, info=probe(interact_11), data_root=ie_root)
    faces = _interact_11_boxes(interact_11)
    state = metric.start(ctx)
    for f in iter_frames(interact_11):
        metric.update(state, FrameData(index=f.index, time=f.time, rgb=f.rgb, faces=faces[f.index]))
    result = metric.finish(state)
    assert result.status == "ok", result.reason

    n_slots = result.details["n_slots_25fps"]
    assert n_slots == 214  # 205 frames at 24 fps = 8.542 s -> round(213.5) slots at 25 fps
    for k, person in enumerate(clip.people):
        rec = result.details["people"][person.role]
        assert rec["tracks"] == [[0, n_slots]]  # the face is followed through the whole clip
        n_audio = len(ctx.person_audio(k, sn.SAMPLE_RATE, dtype="int16"))
        n_win = min(n_slots, n_audio // 640) - 5  # the reference's window count (last one lost)
        # independent of the metric's code: every window [i, i+5) whose five frame times i/25 ..
        # (i+4)/25 lie in a speaking segment (half-open, manifest seconds)
        expected = [
            i for i in range(n_win)
            if all(any(s <= j / 25 < e for s, e in person.speaking) for j in range(i, i + 5))
        ]
        got = [i for a, b in rec["kept_windows"] for i in range(a, b)]
        assert got == expected
        assert rec["n_windows"] == len(expected)
    # by hand: left speaks from 4.5333 s (slot 114 = 4.56 s) to the end; right until 4.5333 s
    assert result.details["people"]["left"]["kept_windows"] == [[114, 209]]
    assert result.details["people"]["right"]["kept_windows"] == [[0, 110]]
    # the clip value is the mean over the two speakers (default weighting "person")
    assert set(result.per_person) == {"left", "right"}
    assert result.value == pytest.approx((result.per_person["left"] + result.per_person["right"]) / 2, rel=1e-12)
