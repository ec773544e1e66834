"""The optional Kim_Vocal_2 vocal separator (baselines/anytalker/vocals.py, anytalker-model.md §7.1 step 2).

Tiny ONNX models with the real model's input/output ([batch, 4, 3072, 256], names input/output),
saved as .onnx files and loaded through ``MdxModel`` (onnxruntime), stand in for Kim_Vocal_2.
References are analytic or computed independently with scipy: an identity model gives back the
(band-limited) input times 1.009, a zero model silence, a model keeping the bins below b a signal
equal to scipy.fft's brick-wall low-pass, a 1x1 convolution mixing the channel pairs the stereo
mix it stands for (which pins the [left re, left im, right re, right im] layout). Then the 16 kHz
path (lengths exact), the cache, the file lookup and its errors, and the method's wiring.
"""

from __future__ import annotations

import json
import wave

import numpy as np
import pytest
import scipy.fft as sfft
from click.testing import CliRunner
from scipy.signal import resample_poly

from interactive_eyes.baselines.anytalker import vocals as V

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
FS = V.MODEL_RATE


def _save_model(path, nodes=(), inits=(), shape=("batch", 4, V.DIM_F, V.DIM_T), identity=False):
    from onnx import TensorProto, helper

    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, list(shape))
    out = helper.make_tensor_value_info("output", TensorProto.FLOAT, list(shape))
    nodes = [helper.make_node("Identity", ["input"], ["output"])] if identity else list(nodes)
    graph = helper.make_graph(nodes, "tiny_mdx", [inp], [out], initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # readable by every onnxruntime >= 1.16 (the extras' floor)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _scale_model(path, factor: np.ndarray):
    """output = input * factor (broadcast): a per-bin or per-channel mask."""
    from onnx import helper, numpy_helper

    init = numpy_helper.from_array(factor.astype(np.float32), "factor")
    return _save_model(path, [helper.make_node("Mul", ["input", "factor"], ["output"])], [init])


def _mix_model(path, mix: np.ndarray):
    """A 1x1 convolution applying the 2x2 stereo matrix ``mix`` to (re, im) of each channel."""
    from onnx import helper, numpy_helper

    w = np.zeros((4, 4, 1, 1), np.float32)
    for o in range(2):
        for i in range(2):
            w[2 * o, 2 * i] = w[2 * o + 1, 2 * i + 1] = mix[o, i]  # re -> re, im -> im
    return _save_model(path, [helper.make_node("Conv", ["input", "w"], ["output"])],
                       [numpy_helper.from_array(w, "w")])


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("mdx")
    band = np.zeros((1, 1, V.DIM_F, 1), np.float32)
    band[:, :, :1045] = 1  # bins below 1045: up to 1045 * 44100 / 7680 = 6000.5 Hz
    matrix = np.array([[0.7, -0.4], [0.25, 1.3]])
    paths = {
        "identity": _save_model(d / "identity.onnx", identity=True),
        "zero": _scale_model(d / "zero.onnx", np.zeros((1, 1, 1, 1))),
        "band": _scale_model(d / "band.onnx", band),
        "mix": _mix_model(d / "mix.onnx", matrix),
        "batch1": _save_model(d / "batch1.onnx", identity=True, shape=(1, 4, V.DIM_F, V.DIM_T)),
        "wrong": _save_model(d / "wrong.onnx", identity=True, shape=("batch", 4, 2048, V.DIM_T)),
    }
    return {"paths": paths, "matrix": matrix, **{k: V.MdxModel(p, threads=1) for k, p in paths.items() if k != "wrong"}}


def _band_noise(n, bands, fs=FS, seed=0, channels=2):
    """Random noise with energy only in ``bands`` (Hz) and smooth 0.1 s fades, peak 0.5: band-limited
    at its ends too, so an ideal low-pass above the bands returns it unchanged."""
    rng = np.random.default_rng(seed)
    spec = sfft.rfft(rng.standard_normal((channels, n)), axis=1)
    f = sfft.rfftfreq(n, 1 / fs)
    spec[:, ~np.any([(f >= lo) & (f < hi) for lo, hi in bands], axis=0)] = 0
    x = sfft.irfft(spec, n, axis=1)
    fade = min(n // 4, fs // 10)
    env = np.ones(n)
    env[:fade] = np.sin(np.linspace(0, np.pi / 2, fade)) ** 2
    env[n - fade:] = env[:fade][::-1]
    x *= env
    return (x / np.abs(x).max() * 0.5).astype(np.float32)


def _lowpass(x, fc, fs=FS):
    spec = sfft.rfft(x.astype(np.float64), axis=1)
    spec[:, sfft.rfftfreq(x.shape[1], 1 / fs) >= fc] = 0
    return sfft.irfft(spec, x.shape[1], axis=1)


def test_constants_are_the_published_model_parameters():
    assert (V.N_FFT, V.HOP, V.DIM_F, V.DIM_T, V.COMPENSATE, V.MODEL_RATE) == (7680, 1024, 3072, 256, 1.009, 44100)
    assert V.N_BINS == 3841 and V.SEGMENT == 261120 and V.STEP == 195840
    # a centred STFT of one segment has exactly dim_t frames
    import torch

    assert V._stft(torch.zeros(1, V.SEGMENT)).shape == (1, V.N_BINS, V.DIM_T)
    w = V.ola_window(8)
    assert np.all(w > 0) and np.allclose(w, w[::-1])


# one segment, exactly one segment, several segments, a long odd length
LENGTHS = [3000, V.SEGMENT - 2 * V.TRIM, V.SEGMENT, 700_001]


@pytest.mark.parametrize("n", LENGTHS)
def test_identity_model_returns_the_input_times_compensate(models, n):
    x = _band_noise(n, [(30, 16000)])  # below the dim_f cut-off 17.64 kHz
    y = V.separate_model_rate(x, models["identity"])
    assert y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_allclose(y, x * 1.009, atol=2e-5)


def test_zero_model_returns_silence(models):
    y = V.separate_model_rate(_band_noise(400_000, [(30, 16000)]), models["zero"])
    assert y.shape == (2, 400_000) and not np.any(y)


@pytest.mark.parametrize("n", [50_000, 700_001])
def test_band_model_equals_scipy_low_pass(models, n):
    # energy in 30-4000 Hz and 8-12 kHz; the model keeps bins < 1045 (6000.5 Hz): the second band goes
    x = _band_noise(n, [(30, 4000), (8000, 12000)], seed=1)
    y = V.separate_model_rate(x, models["band"]) / 1.009
    ref = _lowpass(x, 6000.0)
    assert np.abs(ref).max() > 0.2 and np.abs(x - ref).max() > 0.1  # the cut removes something real
    np.testing.assert_allclose(y, ref, atol=2e-5)


def test_channel_layout_is_left_re_im_then_right_re_im(models):
    x = _band_noise(300_000, [(30, 16000)], seed=2)
    y = V.separate_model_rate(x, models["mix"])
    np.testing.assert_allclose(y, models["matrix"] @ x * 1.009, atol=3e-5)


def test_fixed_batch_axis_gives_the_same_result(models):
    x = _band_noise(900_000, [(30, 16000)], seed=3)  # 5 segments: batches of 1 vs one call of 4 + 1
    assert models["batch1"].fixed_batch == 1 and models["identity"].fixed_batch is None
    np.testing.assert_allclose(V.separate_model_rate(x, models["batch1"]),
                               V.separate_model_rate(x, models["identity"]), atol=1e-6)


@pytest.mark.parametrize("n", [1, 7, 16000, 160_003])
def test_16k_path_keeps_lengths_and_returns_the_input(models, n):
    x = _band_noise(n, [(30, 6000)], fs=16000, seed=4, channels=1)[0] if n > 100 else \
        np.linspace(-0.1, 0.1, n, dtype=np.float32)
    y = V.separate(x, models["identity"])
    assert y.shape == (n, 2) and np.array_equal(y[:, 0], y[:, 1])  # mono is copied to both channels
    if n > 100:
        # the same resampling without the separator (scipy), then the input itself within the
        # resampler's pass-band ripple (Kaiser window, up to 6 kHz of the 8 kHz band)
        rt = resample_poly(resample_poly(np.stack([x, x]), 441, 160, axis=1).astype(np.float32), 160, 441, axis=1)
        np.testing.assert_allclose(y, rt[:, :n].T * 1.009, atol=2e-5)
        np.testing.assert_allclose(y[:, 0] / 1.009, x, atol=2e-3)


def test_16k_stereo_and_bad_shapes(models):
    x = _band_noise(40_000, [(30, 6000)], fs=16000, seed=5)  # [2, n]
    y = V.separate(x.T, models["identity"])
    np.testing.assert_allclose(y / 1.009, x.T, atol=2e-3)
    with pytest.raises(ValueError, match="mono or stereo"):
        V.separate(np.zeros((100, 3), np.float32), models["identity"])


def test_wrong_model_files_fail_with_one_line_naming_the_file(models, tmp_path):
    wrong = models["paths"]["wrong"]
    with pytest.raises(V.SeparatorModelError) as err:
        V.MdxModel(wrong)
    msg = str(err.value)
    assert "\n" not in msg and str(wrong) in msg and "[batch, 4, 3072, 256]" in msg and "2048" in msg
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model at all")
    with pytest.raises(V.SeparatorModelError, match="junk.onnx: onnxruntime cannot load it") as err:
        V.MdxModel(junk)
    assert "\n" not in str(err.value)


# ----------------------------------------------------------------------------------- cache, files


def _wav(path, samples, rate=16000):
    from interactive_eyes.media.audio import write_wav

    return write_wav(path, samples, rate)


def test_track_cache_is_written_once_per_content(models, tmp_path, monkeypatch):
    track = _wav(tmp_path / "a.left.wav", _band_noise(20_000, [(30, 6000)], fs=16000, seed=6, channels=1)[0])
    sep = V.VocalSeparator(models["paths"]["mix"], threads=1)
    calls = []
    real = V.separate
    monkeypatch.setattr(V, "separate", lambda w, m: calls.append(1) or real(w, m))
    wave1, cached, reused = sep.track(track, tmp_path / "pre")
    assert not reused and cached.parent == tmp_path / "pre"
    assert cached.name.startswith("a_") and cached.name.endswith("_(Vocals)_Kim_Vocal_2-16k.wav")
    with wave.open(str(cached)) as w:  # 16-bit stereo at 16 kHz, as the official cache
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == (2, 2, 16000, 20_000)
    # mono track -> both channels mixed by the model's matrix -> mean of the two rows
    from interactive_eyes.media.audio import load_audio

    x = load_audio(track, 16000)
    expected = models["matrix"].sum(axis=1).mean() * 1.009 * x
    np.testing.assert_allclose(wave1, expected, atol=3e-3)
    wave2, cached2, reused2 = sep.track(track, tmp_path / "pre")
    assert reused2 and cached2 == cached and np.array_equal(wave1, wave2) and len(calls) == 1
    _wav(track, x * 0.5)  # same name, other samples: another key (no stale reuse)
    _, cached3, reused3 = sep.track(track, tmp_path / "pre")
    assert not reused3 and cached3 != cached and len(calls) == 2
    assert sep.describe()["sha256"] == V.hashlib.sha256(models["paths"]["mix"].read_bytes()).hexdigest()


def test_loud_output_is_scaled_not_clipped(tmp_path):
    loud = _scale_model(tmp_path / "loud.onnx", np.full((1, 1, 1, 1), 4.0))
    track = _wav(tmp_path / "b.wav", _band_noise(16000, [(30, 3000)], fs=16000, seed=7, channels=1)[0] * 1.6)
    got, cached, _ = V.VocalSeparator(loud, threads=1).track(track, tmp_path / "pre")
    from interactive_eyes.media.audio import load_audio

    x = load_audio(track, 16000)
    assert np.abs(got).max() == pytest.approx(1.0, abs=1e-3)
    assert np.corrcoef(got, x)[0, 1] > 0.9999  # a gain only: nothing was clipped


@pytest.fixture
def home(tmp_path, monkeypatch):
    import interactive_eyes.weights as W

    monkeypatch.setenv("IE_BENCH_HOME", str(tmp_path / "home"))
    for name, spec in W.WEIGHTS.items():
        if name != "face_landmarker":  # the tracker's face model (the session-wide test copy) stays
            monkeypatch.delenv(spec.env_var, raising=False)
    return tmp_path


def test_model_lookup_order(home, models, monkeypatch):
    import interactive_eyes.weights as W

    ckpt = home / "ckpt"
    monkeypatch.setenv("IE_BENCH_OFFLINE", "1")
    with pytest.raises(W.WeightsMissingError) as err:
        V.locate_model(ckpt)
    msg = str(err.value)
    cache = home / "home" / "weights" / "anytalker-1.3b" / "vocal_separator" / "Kim_Vocal_2.onnx"
    assert "\n" not in msg and str(cache) in msg and "ie-bench weights fetch kim_vocal_2" in msg
    assert str(ckpt / "vocal_separator" / "Kim_Vocal_2.onnx") in msg
    cache.parent.mkdir(parents=True)
    cache.write_bytes(models["paths"]["identity"].read_bytes())
    assert V.locate_model(ckpt) == cache  # not in ckpt_dir: the cache
    (ckpt / "vocal_separator").mkdir(parents=True)
    (ckpt / "vocal_separator" / "Kim_Vocal_2.onnx").write_bytes(cache.read_bytes())
    assert V.locate_model(ckpt) == ckpt / "vocal_separator" / "Kim_Vocal_2.onnx"  # the official layout first
    monkeypatch.setenv("IE_BENCH_WEIGHT_KIM_VOCAL_2", str(models["paths"]["band"]))
    assert V.locate_model(ckpt) == models["paths"]["band"]  # the registry's override wins
    cache.write_bytes(b"\x08\x07truncated")
    monkeypatch.delenv("IE_BENCH_WEIGHT_KIM_VOCAL_2")
    with pytest.raises(V.SeparatorModelError, match="does not match the registry .not a valid ONNX file"):
        V.locate_model(None)  # a corrupt cached file is an error, not a warning


def _ckpt_without_separator(root):
    import interactive_eyes.weights as W
    from interactive_eyes.baselines.anytalker import files

    for name in W.WEIGHT_SETS[files.WEIGHT_SET]:
        if name != files.VOCALS:
            p = files._expected(name, root)
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(name.encode())
    return root


def _cli_run(test_data, out, ckpt):
    from interactive_eyes.app.cli import main

    return CliRunner().invoke(main, ["run", "--method", "anytalker", "--out", str(out), "--clips", "interact_11",
                                     "--root", str(test_data / "interactive_eyes"), "--quiet",
                                     "--param", f"ckpt_dir={ckpt}", "--param", "vocal_separation=true"])


def test_cli_without_the_model_offline_exits_3_before_any_clip(home, test_data, monkeypatch):
    monkeypatch.setenv("IE_BENCH_OFFLINE", "1")
    ckpt = _ckpt_without_separator(home / "ckpt")
    res = _cli_run(test_data, home / "out", ckpt)
    assert res.exit_code == 3, res.output
    assert "kim_vocal_2" in res.output and "offline" in res.output
    assert not (home / "out" / "run.json").exists()


def test_cli_with_a_wrong_model_exits_3_naming_it(home, test_data, models):
    ckpt = _ckpt_without_separator(home / "ckpt")
    (ckpt / "vocal_separator").mkdir()
    target = ckpt / "vocal_separator" / "Kim_Vocal_2.onnx"
    target.write_bytes(models["paths"]["wrong"].read_bytes())
    res = _cli_run(test_data, home / "out", ckpt)
    assert res.exit_code == 3, res.output
    assert str(target) in " ".join(res.output.split()) and "3072" in res.output
    assert not (home / "out" / "run.json").exists()


# ----------------------------------------------------------------------------------- the method


def test_method_feeds_separated_tracks_to_the_pipeline(home, test_data, models, monkeypatch):
    from interactive_eyes.baselines import METHODS
    from interactive_eyes.baselines.anytalker import pipeline
    from interactive_eyes.baselines.base import Item
    from interactive_eyes.data import manifest

    ckpt = _ckpt_without_separator(home / "ckpt")
    (ckpt / "vocal_separator").mkdir()
    (ckpt / "vocal_separator" / "Kim_Vocal_2.onnx").write_bytes(models["paths"]["zero"].read_bytes())
    item = Item.from_clip(manifest.load(None).clip("interact_11"), test_data / "interactive_eyes",
                          test_data / "anytalker_examples" / "images" / "2p-0.png")
    seen = []

    class FakePipeline:  # records what the DiT pipeline would receive
        def generate(self, rgb, waves, boxes, *, num_frames, **kw):
            seen.append([np.array(w) for w in waves])
            return pipeline.Result(frames=np.zeros((num_frames, 64, 96, 3), np.uint8), info={})

    infos = {}
    for flag in (False, True):
        m = METHODS.get("anytalker")(ckpt_dir=str(ckpt), vocal_separation=flag, device="cpu")
        monkeypatch.setattr(m, "_load", lambda: FakePipeline())
        m.prepare()
        out = home / f"run_{flag}"
        out.mkdir()
        infos[flag] = json.loads(json.dumps(m.generate(item, out / "interact_11.mp4", seed=0)))
    plain, separated = seen
    n = int(round(min(item.duration, 8.597) * 16000))
    assert len(plain) == 2 and all(abs(len(w) - n) <= 16 and np.abs(w).max() > 0.05 for w in plain)
    assert [len(w) for w in separated] == [len(w) for w in plain]
    assert all(not np.any(w) for w in separated)  # the zero model: silence reaches wav2vec2
    assert infos[False]["vocal_separation"] is False and infos[False]["vocal_separator"] is None
    rec = infos[True]["vocal_separator"]
    assert infos[True]["vocal_separation"] is True and rec["stem"] == "Vocals"
    assert rec["sha256"] == V.hashlib.sha256(models["paths"]["zero"].read_bytes()).hexdigest()
    assert rec["path"] == str(ckpt / "vocal_separator" / "Kim_Vocal_2.onnx")
    cached = sorted((home / "run_True" / "audio_preprocess").glob("*_(Vocals)_Kim_Vocal_2-16k.wav"))
    assert len(cached) == 2 and sorted(t["vocals"] for t in rec["tracks"]) == [str(c) for c in cached]
    assert "kim_vocal_2" not in infos[True]["weights"]  # recorded once, under vocal_separator
