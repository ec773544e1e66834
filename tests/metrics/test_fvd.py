"""FVD plumbing with a TorchScript stand-in of StyleGAN-V's I3D (same call signature, same file format).

The stand-in checks what the real detector relies on — a float B×3×T×H×W tensor in the uint8
range [0, 255], ``rescale``/``resize``/``return_features`` passed as keywords — and returns 400-d
features whose first component is the mean rescaled intensity of the clip, so the clip boundaries
can be read back from the features.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from interactive_eyes import weights as W  # noqa: E402
from interactive_eyes.metrics.base import FrameData  # noqa: E402
from interactive_eyes.metrics.fvd import FVD  # noqa: E402
from interactive_eyes.stats.frechet import GaussianStats, SampleSizeWarning, frechet_distance  # noqa: E402
from weight_files import register_file, save_torchscript  # noqa: E402  (the shared helper module of this folder)


class StandInI3D(torch.nn.Module):
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.conv = torch.nn.Conv3d(3, 8, kernel_size=3, padding=1)
        self.proj = torch.nn.Linear(9, 399)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False,
                return_features: bool = False) -> torch.Tensor:
        if x.dim() != 5 or x.shape[1] != 3:
            raise ValueError("expected B x 3 x T x H x W")
        if x.shape[2] < 10:
            raise ValueError("clip too short")
        if rescale:
            if bool(x.min() < 0.0) or bool(x.max() > 255.0):
                raise ValueError("expected values in [0, 255]")
            x = x / 127.5 - 1.0  # the real module's rescale maps [0,255] to [-1,1]
        if bool(x.min() < -1.001) or bool(x.max() > 1.001):
            raise ValueError("values outside [-1, 1] after rescale")
        if resize:
            x = torch.nn.functional.interpolate(x, size=(x.shape[2], 224, 224), mode="trilinear",
                                                align_corners=False)
        if not return_features:
            raise ValueError("stand-in only returns features")
        mean = x.mean(dim=(1, 2, 3, 4)).unsqueeze(1)
        h = torch.relu(self.conv(x)).mean(dim=(2, 3, 4))
        return torch.cat([mean, torch.tanh(self.proj(torch.cat([h, mean], dim=1)))], dim=1)


@pytest.fixture(scope="session")
def standin_file(tmp_path_factory):
    return save_torchscript(StandInI3D(), tmp_path_factory.mktemp("i3d") / "i3d_torchscript.pt")


@pytest.fixture
def fvd_weights(standin_file, monkeypatch):
    register_file(monkeypatch, "i3d_torchscript", standin_file)
    return str(standin_file)


def _grey_video(n_frames: int, h=24, w=40, offset=0) -> list[np.ndarray]:
    """Frame i is uniformly grey with level (offset + i) — its clip means are known exactly."""
    return [np.full((h, w, 3), offset + i, dtype=np.uint8) for i in range(n_frames)]


def _run(metric, frames):
    state = metric.start(None)
    for i, f in enumerate(frames):
        metric.update(state, FrameData(index=i, time=i / 24, rgb=f))
    return metric.finish(state)


def test_clips_are_16_consecutive_non_overlapping_frames_in_uint8_range(fvd_weights):
    metric = FVD(weights_path=fvd_weights, batch_size=2)
    res = _run(metric, _grey_video(53))  # 3 clips (0-15, 16-31, 32-47), 5 frames unused
    assert res.status == "ok"
    assert res.details == {"n_clips": 3, "n_frames": 53, "n_frames_unused": 5}
    st = GaussianStats.from_arrays(res.stats)
    assert st.count == 3 and st.dim == 400
    # first feature = mean rescaled level = mean over the clip of (i/127.5 - 1)
    expected_levels = [np.mean(np.arange(16 * k, 16 * k + 16)) / 127.5 - 1 for k in range(3)]
    assert st.sum[0] == pytest.approx(sum(expected_levels), abs=1e-5)
    assert st.sum_outer[0, 0] == pytest.approx(sum(v * v for v in expected_levels), abs=1e-5)


def test_detector_receives_full_frames_in_b3thw_layout(fvd_weights):
    metric = FVD(weights_path=fvd_weights)
    seen = {}
    real = metric.detector

    def spy(x, **kwargs):
        seen["shape"], seen["kwargs"] = tuple(x.shape), kwargs
        seen["range"] = (float(x.min()), float(x.max()))
        return real(x, **kwargs)

    metric._detector = spy
    frames = [np.random.default_rng(i).integers(0, 256, (30, 52, 3), dtype=np.uint8) for i in range(16)]
    _run(metric, frames)
    assert seen["shape"] == (1, 3, 16, 30, 52)  # not cropped, not resized outside the detector
    assert seen["kwargs"] == {"rescale": True, "resize": True, "return_features": True}
    assert 0.0 <= seen["range"][0] and seen["range"][1] <= 255.0 and seen["range"][1] > 1.0


def test_short_video_is_skipped_and_cap_is_respected(fvd_weights):
    metric = FVD(weights_path=fvd_weights)
    assert _run(metric, _grey_video(15)).status == "skipped"
    capped = FVD(weights_path=fvd_weights, max_clips_per_video=2)
    assert _run(capped, _grey_video(80)).details["n_clips"] == 2


def test_shards_merge_and_distance_is_the_shared_frechet_code(fvd_weights):
    metric = FVD(weights_path=fvd_weights)
    rng = np.random.default_rng(1)
    videos = [[rng.integers(0, 256, (20, 28, 3), dtype=np.uint8) for _ in range(32)] for _ in range(4)]
    results = [_run(metric, v) for v in videos]
    ref = GaussianStats(400).update(rng.normal(size=(500, 400)) * 0.1).to_arrays()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SampleSizeWarning)  # 8 clips for 400-d features
        whole = metric.reduce([r.stats for r in results], ref)
        # the same four videos split into two shards, each merged first (as two workers would)
        shard_a = GaussianStats.merged(GaussianStats.from_arrays(r.stats) for r in results[:2]).to_arrays()
        shard_b = GaussianStats.merged(GaussianStats.from_arrays(r.stats) for r in results[2:]).to_arrays()
        split = metric.reduce([shard_a, shard_b], ref)
    assert whole.n_samples == split.n_samples == 8
    assert split.value == pytest.approx(whole.value, rel=1e-9)
    gen = GaussianStats.merged(GaussianStats.from_arrays(r.stats) for r in results)
    refst = GaussianStats.from_arrays(ref)
    assert whole.value == pytest.approx(frechet_distance(gen.mean, gen.cov, refst.mean, refst.cov).value, rel=1e-12)
    # 8 generated clips, 500 reference samples, 400-d: only the generated set is rank-deficient
    assert whole.details["sample_size_warning"] == {
        "generated": "8 samples for 400-d features: the covariance has rank ≤ 7 < 400, so the value is biased "
                     "and only comparable at equal sample counts"}
    assert (whole.details["n_clips_generated"], whole.details["n_clips_reference"]) == (8, 500)


def test_sample_size_check_flags_a_small_reference_by_its_own_count(fvd_weights):
    """The other direction: enough generated clips (450), a small reference (12): only the
    reference is flagged, with 12 (a count read from the generated set would flag nothing)."""
    rng = np.random.default_rng(4)
    gen = GaussianStats(400).update(rng.normal(size=(450, 400)))
    ref = GaussianStats(400).update(rng.normal(size=(12, 400)) + 0.1)
    with pytest.warns(SampleSizeWarning, match="fvd: reference set: 12 samples for 400-d") as caught:
        out = FVD(weights_path=fvd_weights).reduce([gen.to_arrays()], ref.to_arrays())
    assert len([w for w in caught if w.category is SampleSizeWarning]) == 1
    assert out.details["sample_size_warning"] == {
        "reference": "12 samples for 400-d features: the covariance has rank ≤ 11 < 400, so the value is biased "
                     "and only comparable at equal sample counts"}
    assert (out.n_samples, out.details["n_clips_generated"], out.details["n_clips_reference"]) == (450, 450, 12)
    assert out.value == pytest.approx(frechet_distance(gen.mean, gen.cov, ref.mean, ref.cov).value, rel=1e-12)


def test_reference_from_a_video_folder(fvd_weights, tmp_path):
    from interactive_eyes.media.video import write_video

    write_video(tmp_path / "a.mp4", _grey_video(40, h=32, w=48, offset=50), fps=25)
    write_video(tmp_path / "b.mp4", _grey_video(12, h=32, w=48), fps=25)  # too short: skipped
    metric = FVD(weights_path=fvd_weights)
    arrays = metric.load_reference(tmp_path, progress=False)
    assert GaussianStats.from_arrays(arrays).count == 2  # 40 frames -> 2 clips


def test_invalid_clip_len_and_unverified_file(fvd_weights, tmp_path):
    with pytest.raises(ValueError, match="too short"):
        FVD(clip_len=8)
    bad = tmp_path / "i3d.pt"
    bad.write_bytes(b"x" * 10)
    with pytest.raises(W.WeightsMismatchError):
        FVD(weights_path=str(bad)).weights()
