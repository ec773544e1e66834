"""SyncNet v2 pieces against independent references.

- network, strict loading, offset/confidence/min distance and frame-wise confidence: the PyPI
  package ``syncnet-python`` 0.2.3 (its ``SyncNetInstance.evaluate``) on identical inputs;
- MFCCs: ``python_speech_features`` and a NumPy computation of c0 (log frame energy);
- the 25 fps frame grid: FFmpeg's ``fps`` filter (libavfilter, through PyAV);
- crop geometry: ``syncnet-python``'s pipeline crop step on the same frames and track;
- the offset search: synthetic embeddings with a planted shift.
"""

from __future__ import annotations

import importlib
import math
from fractions import Fraction
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from interactive_eyes.media.audio import load_audio
from interactive_eyes.media.video import read_frames, write_video
from interactive_eyes.metrics import syncnet as sn
from sync_stand_ins import EnvelopeNet, random_syncnet  # noqa: E402  (shared stand-ins)

pytest.importorskip("syncnet_python", reason="syncnet-python (test dependency) is the reference")
ref_instance = importlib.import_module("syncnet_python.SyncNetInstance")
ref_model = importlib.import_module("syncnet_python.SyncNetModel")

torch.set_grad_enabled(False)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def syncnet_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("syncnet") / "syncnet_v2.model"
    sn.save_state_dict_like_reference(random_syncnet(), path)
    return path


def _talking_crops(n_frames: int, seed: int = 0, fps: float = 25.0):
    """Synthetic 224x224 'face crops' whose dark mouth opens with the audio envelope, and that
    audio (int16, 16 kHz): voiced harmonics at 140 Hz times the envelope, plus a little noise."""
    rng = np.random.default_rng(seed)
    duration = n_frames / fps
    t_env = np.linspace(0, duration, 64)
    env = np.clip(np.convolve(rng.random(64), np.ones(5) / 5, mode="same") * 1.6 - 0.3, 0, 1)
    yy, xx = np.mgrid[0:224, 0:224]
    low = rng.random((8, 8, 3))
    base = np.kron(low, np.ones((28, 28, 1))) * 90 + 80
    face = ((xx - 112) / 70) ** 2 + ((yy - 110) / 90) ** 2 < 1
    base[face] = [200, 160, 140]
    frames = []
    for i in range(n_frames):
        e = np.interp(i / fps, t_env, env)
        mouth = ((xx - 112) / 28) ** 2 + ((yy - 165) / (3 + 22 * e)) ** 2 < 1
        img = base.copy()
        img[mouth] = [40, 20, 30]
        frames.append(np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8))
    n = int(round(duration * sn.SAMPLE_RATE))
    ts = np.arange(n) / sn.SAMPLE_RATE
    voice = sum(np.sin(2 * np.pi * 140 * k * ts + k) / k for k in range(1, 8))
    audio = voice * np.interp(ts, t_env, env) * 6000 + rng.normal(0, 200, n)
    return np.stack(frames), np.clip(audio, -32768, 32767).astype(np.int16)


# --------------------------------------------------------------------------- network and loading


def test_state_dict_layout_matches_spec_and_reference():
    net = sn.SyncNet()
    keys = set(net.state_dict())
    ref_keys = set(ref_model.S(num_layers_in_fc_layers=1024).state_dict())
    assert keys == ref_keys
    # spec §1.1: 13,631,616 parameters plus 8,640 BatchNorm running statistics
    assert sum(p.numel() for p in net.parameters()) == 13_631_616
    n_stats = sum(v.numel() for k, v in net.state_dict().items() if k.endswith(("running_mean", "running_var")))
    assert n_stats == 8_640
    for key in ("netcnnlip.0.weight", "netcnnlip.1.running_mean", "netfcaud.3.bias", "netcnnaud.18.weight"):
        assert key in keys
    assert tuple(net.state_dict()["netcnnaud.18.weight"].shape) == (512, 256, 5, 4)
    assert tuple(net.state_dict()["netcnnlip.0.weight"].shape) == (96, 3, 5, 7, 7)


def test_load_is_strict_and_errors_name_the_file(syncnet_file, tmp_path):
    net, path = sn.load_syncnet(syncnet_file)
    assert path == syncnet_file and not net.training
    state = torch.load(syncnet_file, weights_only=True)
    assert not any(k.endswith("num_batches_tracked") for k in state)  # like the released file

    missing = dict(state)
    missing.pop("netfclip.3.bias")
    bad = tmp_path / "missing.model"
    torch.save(missing, bad)
    with pytest.raises(sn.SyncNetLoadError, match=r"missing\.model: not a syncnet_v2 state dict .*netfclip\.3\.bias"):
        sn.load_syncnet(bad)
    extra = dict(state, **{"netcnnlip.99.weight": torch.zeros(1)})
    torch.save(extra, bad)
    with pytest.raises(sn.SyncNetLoadError, match="Unexpected key"):
        sn.load_syncnet(bad)
    (tmp_path / "junk.model").write_bytes(b"not a torch file")
    with pytest.raises(sn.SyncNetLoadError) as err:
        sn.load_syncnet(tmp_path / "junk.model")
    assert "junk.model: not a loadable torch file" in str(err.value) and "\n" not in str(err.value)


def test_network_equals_reference_network(syncnet_file):
    ours, _ = sn.load_syncnet(syncnet_file)
    ref = ref_model.S(num_layers_in_fc_layers=1024)
    ref.load_state_dict(torch.load(syncnet_file, weights_only=True))
    ref.eval()
    g = torch.Generator().manual_seed(1)
    video = torch.rand(3, 3, 5, 224, 224, generator=g) * 255
    audio = torch.randn(3, 1, 13, 20, generator=g) * 10
    # the same torch ops in the same order: bit-identical here; 1e-6 relative leaves room for
    # nothing but a different summation order
    torch.testing.assert_close(ours.embed_video(video), ref.forward_lip(video), rtol=1e-6, atol=0)
    torch.testing.assert_close(ours.embed_audio(audio), ref.forward_aud(audio), rtol=1e-6, atol=0)
    torch.testing.assert_close(ours.lip_features(video), ref.forward_lipfeat(video), rtol=1e-6, atol=0)


# --------------------------------------------------------------------------- parity with evaluate


def _reference_evaluate(syncnet_file, frames_bgr, audio, tmp_path, monkeypatch):
    """syncnet-python's SyncNetInstance.evaluate on the same pixels and samples.

    evaluate() reads ``tmp_dir/*.jpg`` with cv2.imread and ``tmp_dir/audio.wav`` with
    scipy.io.wavfile; the reference pipeline fills that folder with ffmpeg. Here the frames are
    written **losslessly** (PNG data under the .jpg names evaluate globs for: cv2.imread decodes by
    content), so both sides see identical pixels, and the samples as 16-bit PCM WAV.
    """
    import cv2
    from scipy.io import wavfile

    d = tmp_path / "ref"
    d.mkdir()
    for i, f in enumerate(frames_bgr):
        ok, buf = cv2.imencode(".png", f)
        assert ok
        (d / f"{i + 1:06d}.jpg").write_bytes(buf.tobytes())
    wavfile.write(d / "audio.wav", sn.SAMPLE_RATE, audio)
    net = ref_model.S(num_layers_in_fc_layers=1024)
    net.load_state_dict(torch.load(syncnet_file, weights_only=True))
    inst = ref_instance.SyncNetInstance(net, device="cpu")
    medfilt_out = []
    original = ref_instance.signal.medfilt

    def recording_medfilt(x, kernel_size=None):
        out = original(x, kernel_size=kernel_size)
        medfilt_out.append(out)
        return out

    monkeypatch.setattr(ref_instance.signal, "medfilt", recording_medfilt)
    offset, conf, minval = inst.evaluate(SimpleNamespace(tmp_dir=str(d), batch_size=20, vshift=15))
    monkeypatch.undo()
    return offset, conf, minval, medfilt_out[0]


@pytest.mark.parametrize("case", ["mp4", "audio_shorter"])
def test_evaluate_equals_syncnet_python(case, syncnet_file, tmp_path, monkeypatch):
    frames, audio = _talking_crops(26, seed=3)
    video = write_video(tmp_path / "crop.mp4", frames, 25, audio=audio, audio_rate=sn.SAMPLE_RATE)
    rgb, _ = read_frames(video)  # ie-bench's own decoding (PyAV)
    samples = load_audio(video, sn.SAMPLE_RATE, dtype="int16")
    if case == "audio_shorter":  # min_length comes from the audio: floor(n / 640)
        samples = samples[: 19 * sn.SAMPLES_PER_FRAME + 123]
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    model, _ = sn.load_syncnet(syncnet_file)
    ours = sn.evaluate_crops(model, bgr, samples)
    offset, conf, minval, fconf = _reference_evaluate(syncnet_file, bgr, samples, tmp_path, monkeypatch)

    n_expected = min(len(bgr), len(samples) // 640) - 5
    assert ours.dists.shape == (n_expected, 31) and ours.score.n_windows == n_expected
    # the best offset lies strictly inside -15..15 (not at the zero-padded edge), with a margin
    # to the second best far above the tolerance, so the argmin cannot flip by rounding
    assert ours.score.offset == offset and -sn.VSHIFT < offset < sn.VSHIFT
    best, second = np.sort(ours.score.mean_dists)[:2]
    assert second - best > 0.04
    # float32 distances of ~10 have an ulp of 9.5e-7: the values agree to 1e-6 of the distance
    # scale (measured: 0 or 1 ulp); Sync-C and the framewise values are differences of them
    tol = 1e-6 * minval
    assert abs(ours.score.min_dist - minval) <= tol
    assert abs(ours.score.confidence - conf) <= tol
    np.testing.assert_allclose(ours.framewise, fconf, rtol=0, atol=tol)


# --------------------------------------------------------------------------- MFCC


@pytest.mark.parametrize("n", [400, 401, 559, 560, 561, 16000, 16001])
def test_mfcc_shape_and_values_equal_python_speech_features(n):
    import python_speech_features

    rng = np.random.default_rng(n)
    a = (rng.normal(0, 3000, n)).astype(np.int16)
    m = sn.compute_mfcc(a)
    assert m.shape == (13, 1 + math.ceil((n - 400) / 160))
    np.testing.assert_array_equal(m, python_speech_features.mfcc(a, 16000).T)


def test_mfcc_c0_is_log_frame_energy_and_int16_scale_is_enforced():
    import python_speech_features

    rng = np.random.default_rng(0)
    a = rng.normal(0, 4000, 3200).astype(np.int16)
    m = sn.compute_mfcc(a)
    # independent c0: pre-emphasis 0.97, 400-sample rectangular frames every 160, |rfft_512|^2 / 512
    x = a.astype(np.float64)
    y = np.append(x[0], x[1:] - 0.97 * x[:-1])
    n_frames = 1 + math.ceil((len(y) - 400) / 160)
    y = np.concatenate([y, np.zeros((n_frames - 1) * 160 + 400 - len(y))])
    energy = [np.sum(np.abs(np.fft.rfft(y[160 * k : 160 * k + 400], 512)) ** 2) / 512 for k in range(n_frames)]
    np.testing.assert_allclose(m[0], np.log(energy), rtol=1e-10)

    # float audio in [-1, 1] is refused ...
    with pytest.raises(TypeError, match="int16"):
        sn.compute_mfcc(a.astype(np.float32) / 32768)
    # ... because it moves c0 by 2 ln(1/32768) = -20.79 and leaves c1..c12 unchanged (spec §0.4)
    scaled = python_speech_features.mfcc(a.astype(np.float64) / 32768, 16000).T
    np.testing.assert_allclose(scaled[0] - m[0], 2 * math.log(1 / 32768), atol=1e-6)
    assert abs(2 * math.log(1 / 32768) - (-20.79)) < 0.01
    np.testing.assert_allclose(scaled[1:], m[1:], atol=1e-6)

    with pytest.raises(ValueError, match="16000 Hz"):
        sn.compute_mfcc(a, sample_rate=48000)
    with pytest.raises(ValueError, match="mono"):
        sn.compute_mfcc(np.stack([a, a], 1))


# --------------------------------------------------------------------------- offset search


def test_distance_matrix_equals_reference_calc_pdist():
    g = torch.Generator().manual_seed(0)
    v, a = torch.randn(40, 1024, generator=g), torch.randn(40, 1024, generator=g)
    ours = sn.distance_matrix(v, a)
    ref = torch.stack(ref_instance.calc_pdist(v, a, vshift=15))
    assert ours.shape == (40, 31)
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-5)
    # a subset of rows is the same rows of the full matrix
    torch.testing.assert_close(sn.distance_matrix(v, a, rows=[0, 7, 39]), ref[[0, 7, 39]], rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("shift", [-4, 0, 3, 7])
def test_offset_search_recovers_a_planted_shift(shift):
    """Audio leading the video by d windows (audio window j matches video window j + d) must give
    AV offset +d (the reference's sign: positive = audio leads)."""
    rng = np.random.default_rng(10 + shift)
    n, dim = 80, 64
    v = rng.normal(size=(n + 20, dim))
    a = np.stack([v[j + shift + 10] for j in range(n)]) + rng.normal(0, 0.3, (n, dim))
    score = sn.score_distances(sn.distance_matrix(torch.tensor(v[10 : n + 10]), torch.tensor(a)))
    assert score.offset == shift
    assert score.min_dist == pytest.approx(float(score.mean_dists[15 - shift]))
    assert score.confidence == pytest.approx(float(np.median(score.mean_dists) - score.mean_dists.min()))


def test_confidence_grows_with_a_sharper_minimum():
    rng = np.random.default_rng(5)
    n, dim = 80, 64
    v = rng.normal(size=(n, dim))
    confs = []
    for noise in (0.2, 0.8, 1.4):
        a = v + rng.normal(0, noise, (n, dim))
        s = sn.score_distances(sn.distance_matrix(torch.tensor(v), torch.tensor(a)))
        assert s.offset == 0
        confs.append(s.confidence)
    assert confs[0] > confs[1] > confs[2] > 0


def test_framewise_confidence_is_the_reference_formula():
    from scipy.signal import medfilt

    g = torch.Generator().manual_seed(2)
    d = torch.rand(30, 31, generator=g) * 10
    s = sn.score_distances(d)
    expected = medfilt(np.median(s.mean_dists) - d[:, int(np.argmin(s.mean_dists))].numpy(), 9)
    np.testing.assert_allclose(sn.framewise_confidence(d, s), expected, rtol=1e-6)


# --------------------------------------------------------------------------- 25 fps grid


def _libavfilter_fps25(pts, durations, time_base) -> list[int]:
    """The source frame index FFmpeg's fps=25 filter shows in each output slot."""
    import av

    graph = av.filter.Graph()
    src = graph.add_buffer(width=16, height=16, format="gray", time_base=time_base)
    fps = graph.add("fps", "fps=25")
    sink = graph.add("buffersink")
    src.link_to(fps)
    fps.link_to(sink)
    graph.configure()
    out = []

    def drain():
        while True:
            try:
                frame = graph.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return
            arr = frame.to_ndarray()
            out.append(int(arr[0, 0]) + 256 * int(arr[0, 1]))

    for i, (p, d) in enumerate(zip(pts, durations)):
        img = np.zeros((16, 16), np.uint8)
        img[0, 0], img[0, 1] = i % 256, i // 256
        frame = av.VideoFrame.from_ndarray(img, format="gray")
        frame.pts, frame.time_base, frame.duration = p, time_base, d
        graph.push(frame)
        drain()
    graph.push(None)
    drain()
    return out


@pytest.mark.parametrize(
    "time_base,n,step",
    [
        (Fraction(1, 24), 205, 1),  # AnyTalker's 24 fps (interact_11: 205 frames -> 214 slots)
        (Fraction(1, 30), 100, 1),
        (Fraction(1001, 30000), 120, 1),  # 29.97
        (Fraction(1, 50), 90, 1),
        (Fraction(1, 25), 60, 1),
        (Fraction(1, 12800), 130, 533),  # 24.02 fps in a typical mp4 time base
        (Fraction(2, 25), 40, 1),  # 12.5 fps: every frame shown twice
    ],
)
def test_select_frames_equals_ffmpeg_fps_filter(time_base, n, step):
    pts = [i * step for i in range(n)]
    ref = _libavfilter_fps25(pts, [step] * n, time_base)
    times = [float(p * time_base) for p in pts]
    ours = sn.select_frames(times, end_time=float(n * step * time_base))
    assert ours.tolist() == ref


def test_select_frames_variable_frame_rate_equals_ffmpeg():
    rng = np.random.default_rng(0)
    steps = rng.integers(2400, 5200, 150)  # 17 .. 37 fps, 1/90000 time base
    pts = np.concatenate([[0], np.cumsum(steps)[:-1]]).tolist()
    tb = Fraction(1, 90000)
    ref = _libavfilter_fps25(pts, steps.tolist(), tb)
    ours = sn.select_frames([float(p * tb) for p in pts], end_time=float((pts[-1] + steps[-1]) * tb))
    assert ours.tolist() == ref


def test_24_and_25_fps_renders_give_the_same_offset(tmp_path):
    """The same content rendered at 24 and 25 fps: on the 25 fps grid both give the planted offset;
    used naively (24 fps frames as if 25 fps) the drift of 1/600 s per frame moves it."""
    rng = np.random.default_rng(7)
    duration, lead = 8.0, 2  # audio leads the picture by 2 frames (80 ms)
    freqs, phases = rng.uniform(0.7, 3.0, 6), rng.uniform(0, 2 * np.pi, 6)

    def content(t):
        return np.sum(np.sin(2 * np.pi * freqs[:, None] * np.atleast_1d(t)[None] + phases[:, None]), 0)

    n = int(duration * sn.SAMPLE_RATE)
    ts = np.arange(n) / sn.SAMPLE_RATE
    # MFCC columns 4k..4k+3 cover samples 640k .. 640k+880: centred 27.5 ms after frame k starts
    centre = (1.5 * 160 + 200) / sn.SAMPLE_RATE
    loud = np.exp(0.5 * content(ts + lead / sn.FPS - centre))
    audio = np.clip(rng.normal(0, 1, n) * loud * 1500, -32767, 32767).astype(np.int16)

    def render(fps):
        b = content(np.arange(int(duration * fps)) / fps)
        levels = np.clip(128 + 25 * b, 0, 255).astype(np.uint8)
        frames = np.repeat(levels[:, None, None, None], 224, 1).repeat(224, 2).repeat(3, 3)
        path = write_video(tmp_path / f"r{fps}.mp4", frames, fps)  # through H.264 and back
        rgb, times = read_frames(path)
        return rgb, times, fps

    net = EnvelopeNet()
    results = {}
    for fps in (25, 24):
        rgb, times, fps_in = render(fps)
        idx = sn.select_frames(times, end_time=times[-1] + 1 / fps_in)
        assert len(idx) == 200
        results[fps] = sn.evaluate_crops(net, rgb[idx][..., ::-1].copy(), audio).score
        if fps == 24:
            naive = sn.evaluate_crops(net, rgb[..., ::-1].copy(), audio).score
    assert results[25].offset == lead
    assert results[24].offset == lead
    assert naive.offset != lead and naive.confidence < results[24].confidence


# --------------------------------------------------------------------------- crops


def test_streaming_smoother_equals_medfilt():
    rng = np.random.default_rng(0)
    for n in (1, 4, 7, 13, 14, 40):
        boxes = rng.uniform(50, 60, (n, 4)) + np.array([0, 0, 80, 90])
        sm = sn.StreamingSmoother()
        got = {}
        for b in boxes:
            sm.push(b)
            got.update(sm.ready())
            assert all(i + 6 < len(sm.params) for i in got)  # nothing final too early
        sm.end()
        got.update(sm.ready())
        assert sorted(got) == list(range(n))
        np.testing.assert_allclose(np.stack([got[i] for i in range(n)]), sn.smooth_boxes(boxes), rtol=0, atol=1e-12)


def test_crops_equal_syncnet_python_pipeline_crops(tmp_path, monkeypatch):
    """The crop step of syncnet-python's pipeline (``SyncNetPipeline._crop``) on the same frames
    and track: its frames are captured before its XVID writer (and its ffmpeg calls are stubbed)."""
    import cv2

    pipeline = importlib.import_module("syncnet_python.syncnet_pipeline")
    rng = np.random.default_rng(1)
    h, w, n = 270, 360, 24
    yy, xx = np.mgrid[0:h, 0:w]
    files, frames = [], []
    for i in range(n):
        img = np.stack([(xx * 255 / w + i) % 256, (yy * 255 / h) % 256, rng.integers(0, 256, (h, w))], 2).astype(np.uint8)
        f = tmp_path / f"{i:06d}.png"
        cv2.imwrite(str(f), img)
        files.append(str(f))
        frames.append(cv2.imread(str(f)))
    # a face drifting right, partly leaving the frame at the end (so the 110 border shows)
    cx = np.linspace(120, 380, n) + rng.normal(0, 3, n)
    cy = 140 + rng.normal(0, 3, n)
    side = 90 + rng.normal(0, 4, n)
    boxes = np.stack([cx - side / 2, cy - side * 0.55, cx + side / 2, cy + side * 0.55], 1)

    captured = []

    class CapturingWriter:
        def __init__(self, *args, **kwargs):
            pass

        def write(self, img):
            captured.append(img.copy())

        def release(self):
            pass

    monkeypatch.setattr(pipeline.cv2, "VideoWriter", CapturingWriter)
    monkeypatch.setattr(pipeline.subprocess, "run", lambda *a, **k: None)
    monkeypatch.setattr(pipeline.os, "remove", lambda *a, **k: None)
    fake = SimpleNamespace(cfg=pipeline.PipelineConfig())
    pipeline.SyncNetPipeline._crop(fake, {"frame": np.arange(n), "bbox": boxes}, files, "a.wav", tmp_path / "c" / "0")
    monkeypatch.undo()

    smooth = sn.smooth_boxes(boxes)
    ours = [sn.crop_face(frames[i], *smooth[i]) for i in range(n)]
    assert len(captured) == n
    for i in range(n):
        np.testing.assert_array_equal(ours[i], captured[i])
    assert (ours[-1] == sn.CROP_PAD_VALUE).all(axis=2).any()  # the border value appears


def test_crop_region_geometry():
    # s = 50 (box 100 x 80), centre (200, 150): rows cy - s .. cy + 1.8 s, cols cx -+ 1.4 s
    s, cx, cy = sn.box_params(np.array([[150.0, 110.0, 250.0, 190.0]]))[0]
    assert (s, cx, cy) == (50.0, 200.0, 150.0)
    assert sn.crop_region(s, cx, cy) == (100, 240, 130, 270)  # 140 x 140 = 2.8 s
    frame = np.zeros((300, 400, 3), np.uint8)
    frame[100:240, 130:270] = 255
    crop = sn.crop_face(frame, s, cx, cy)
    assert crop.shape == (224, 224, 3) and crop.min() == 255
