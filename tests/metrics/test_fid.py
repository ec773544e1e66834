"""FID against pytorch-fid itself, with one random-initialised FID Inception shared by both.

No weights can be downloaded here, so the test builds pytorch-fid's own FID architecture with
random weights (BatchNorm statistics calibrated on noise so the features are well scaled), saves
it as a plain state dict — the real file's format and key layout — and registers that file's
SHA-256 in place of the real one. ie-bench loads it through the registry (verified);
pytorch-fid gets the same state dict through its ``load_state_dict_from_url``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pfi = pytest.importorskip("pytorch_fid.inception")

from interactive_eyes import weights as W  # noqa: E402
from interactive_eyes.download import sha256_file  # noqa: E402
from interactive_eyes.metrics.base import ClipResult, FrameData  # noqa: E402
from interactive_eyes.metrics.fid import FID, build_fid_inception  # noqa: E402
from interactive_eyes.stats.frechet import GaussianStats, SampleSizeWarning, frechet_distance  # noqa: E402
from weight_files import random_fid_inception, register_file  # noqa: E402  (the shared helper module of this folder)


@pytest.fixture(scope="session")
def random_fid_weights(tmp_path_factory):
    """A random FID Inception state dict saved as a .pth (built without any download)."""
    return random_fid_inception(tmp_path_factory.mktemp("fidw") / "pt_inception-random.pth", 8)


@pytest.fixture
def registered(random_fid_weights, monkeypatch):
    """Point the registry's pt_inception entry at the random file (hash and size of that file)."""
    register_file(monkeypatch, "pt_inception", random_fid_weights, sha256_prefix=None)
    monkeypatch.setattr(pfi, "load_state_dict_from_url",
                        lambda url, **kw: torch.load(random_fid_weights, map_location="cpu", weights_only=True))
    return random_fid_weights


def _images(seed: int, n: int, size=(48, 40), shift=0.0) -> list[np.ndarray]:
    """Smooth random colour images (low-frequency noise), optionally brightened."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        coarse = rng.uniform(0, 1, size=(6, 5, 3))
        img = np.kron(coarse, np.ones((size[0] // 6 + 1, size[1] // 5 + 1, 1)))[: size[0], : size[1]]
        img = np.clip(img + shift + rng.normal(0, 0.05, img.shape), 0, 1)
        out.append((img * 255).round().astype(np.uint8))
    return out


def _write_pngs(folder, frames):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"{i:04d}.png")
    return folder


def _score(metric: FID, clips: list[list[np.ndarray]]) -> list[ClipResult]:
    results = []
    for frames in clips:
        state = metric.start(None)
        for i, f in enumerate(frames):
            metric.update(state, FrameData(index=i, time=i / 25, rgb=f))
        results.append(metric.finish(state))
    return results


@pytest.mark.slow  # 2 x 80 frames through the random Inception, here and in pytorch-fid: ~40 s on 2 cores
def test_fid_equals_pytorch_fid_on_the_same_pngs(registered, tmp_path, pytorch_fid_on_current_scipy):
    """Parity: ie-bench FID over frames == calculate_fid_given_paths on the frames as PNG.

    dims=64 (pytorch-fid block 0) keeps the covariance full rank with 80 samples per set while
    staying fast; the 2048-d path is compared feature by feature below.
    """
    from pytorch_fid.fid_score import calculate_fid_given_paths

    gen, ref = _images(1, 80), _images(2, 80, shift=0.15)
    d_gen, d_ref = _write_pngs(tmp_path / "gen", gen), _write_pngs(tmp_path / "ref", ref)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # scipy's sqrtm(disp=) inside pytorch-fid
        expected = calculate_fid_given_paths([str(d_gen), str(d_ref)], batch_size=50, device="cpu", dims=64,
                                             num_workers=0)

    metric = FID(dims=64, weights_path=str(registered))
    # generated frames arrive as two clips (their statistics are merged); reference from the PNG folder
    res = metric.reduce([r.stats for r in _score(metric, [gen[:45], gen[45:]])], metric.load_reference(d_ref, False))
    assert res.n_samples == 80 and res.details["n_reference"] == 80
    assert expected > 1.0  # the two sets differ: the comparison is not 0 == 0
    assert res.value == pytest.approx(expected, rel=1e-6)
    assert res.details["frechet"]["method"] == "sqrtm"


@pytest.mark.slow  # the full 2048-d Inception on 6 frames, twice: ~30 s on 2 cores
def test_2048d_features_equal_pytorch_fid_activations(registered, tmp_path):
    from pytorch_fid.fid_score import get_activations

    frames = _images(3, 6, size=(64, 80))
    folder = _write_pngs(tmp_path / "f", frames)
    files = sorted(str(p) for p in folder.glob("*.png"))
    model = pfi.InceptionV3([3]).eval()  # pytorch-fid's own construction (patched loader)
    expected = get_activations(files, model, batch_size=4, dims=2048, device="cpu", num_workers=0)
    ours = FID(weights_path=str(registered)).features(frames)
    assert ours.shape == (6, 2048)
    assert np.std(expected) > 0
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())


def test_two_shards_merge_to_the_one_pass_value(registered):
    metric = FID(dims=64, weights_path=str(registered), batch_size=7)
    gen = _images(4, 40)  # fewer samples than dims is fine here: both routes see the same statistics
    ref = GaussianStats(64).update(metric.features(_images(5, 40, shift=-0.1))).to_arrays()
    (whole,) = _score(metric, [gen])
    shards = _score(metric, [gen[:25], gen[25:]])  # other batch boundaries too (7 does not divide 25)
    merged = GaussianStats.merged(GaussianStats.from_arrays(r.stats) for r in shards)
    one_pass = GaussianStats.from_arrays(whole.stats)
    assert merged.count == one_pass.count == 40
    np.testing.assert_allclose(merged.sum_outer, one_pass.sum_outer, rtol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SampleSizeWarning)
        one, two = metric.reduce([whole.stats], ref), metric.reduce([r.stats for r in shards], ref)
    assert two.n_samples == one.n_samples == 40
    assert two.value == pytest.approx(one.value, rel=1e-6)


def test_frame_stride_and_sample_size_warning(registered):
    metric = FID(dims=64, frame_stride=3, weights_path=str(registered))
    (res,) = _score(metric, [_images(6, 10)])
    assert res.details == {"n_frames": 4, "n_decoded": 10}  # frames 0, 3, 6, 9
    ref = GaussianStats(64).update(metric.features(_images(7, 30))).to_arrays()
    with pytest.warns(SampleSizeWarning, match="rank"):
        out = metric.reduce([res.stats], ref)
    # 4 generated and 30 reference samples for 64-d features: both rank-deficient, each by its own count
    assert out.details["sample_size_warning"] == {
        "generated": "4 samples for 64-d features: the covariance has rank ≤ 3 < 64, so the value is biased "
                     "and only comparable at equal sample counts",
        "reference": "30 samples for 64-d features: the covariance has rank ≤ 29 < 64, so the value is biased "
                     "and only comparable at equal sample counts"}
    g, r = GaussianStats.from_arrays(res.stats), GaussianStats.from_arrays(ref)
    assert out.value == frechet_distance(g.mean, g.cov, r.mean, r.cov).value
    assert metric.params()["frame_stride"] == 3


def test_reference_npz_records_and_checks_provenance(registered, tmp_path):
    from interactive_eyes.stats.reference import ReferenceError, save_reference

    metric = FID(dims=64, weights_path=str(registered))
    folder = _write_pngs(tmp_path / "ref", _images(8, 12))
    stats = metric.compute_reference(folder, progress=False)
    npz = save_reference(stats, tmp_path / "ref.npz", metric.reference_meta())
    arrays = metric.load_reference(npz)
    assert GaussianStats.from_arrays(arrays).count == 12
    other = FID(dims=192, weights_path=str(registered))
    with pytest.raises(ReferenceError, match="dims=64"):
        other.load_reference(npz)


def test_weights_are_verified_before_loading(registered, tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not the FID inception")
    with pytest.raises(W.WeightsMismatchError, match="not the 'pt_inception' weights"):
        FID(weights_path=str(bad)).features(_images(9, 1))
    assert FID(weights_path=str(registered)).weights() == {"pt_inception": sha256_file(registered)}


def test_offline_without_weights_is_reported_as_unavailable(monkeypatch, tmp_path):
    monkeypatch.setenv("IE_BENCH_HOME", str(tmp_path))
    monkeypatch.delenv("IE_BENCH_WEIGHT_PT_INCEPTION", raising=False)
    reason = FID(offline=True).unavailable()
    assert "pt_inception" in reason and "ie-bench weights fetch pt_inception" in reason


def test_build_refuses_unknown_dims(registered):
    with pytest.raises(ValueError, match="dims"):
        build_fid_inception(registered, dims=100)


@pytest.mark.parametrize("ref_format", ["stats", "mu_sigma_count"])
@pytest.mark.parametrize("n_gen, n_ref", [(20, 200), (200, 20)], ids=["generated-small", "reference-small"])
def test_sample_size_check_reads_each_sets_own_count(n_gen, n_ref, ref_format):
    """FID's set step with one set below 65 samples (64-d) and one above: exactly the small set is
    flagged, by its own count, for both reference formats (a count read from the wrong set flags
    the other one, or both)."""
    rng = np.random.default_rng(n_gen)
    gen = GaussianStats(64).update(rng.normal(size=(n_gen, 64)))
    ref = GaussianStats(64).update(rng.normal(size=(n_ref, 64)) + 0.2)
    arrays = ref.to_arrays() if ref_format == "stats" else \
        {"mu": ref.mean, "sigma": ref.cov, "count": np.array(n_ref)}
    small, label = (n_gen, "generated") if n_gen < n_ref else (n_ref, "reference")
    with pytest.warns(SampleSizeWarning, match=f"fid: {label} set: {small} samples for 64-d") as caught:
        out = FID(dims=64).reduce([gen.to_arrays()], arrays)
    assert len([w for w in caught if w.category is SampleSizeWarning]) == 1
    assert out.details["sample_size_warning"] == {
        label: f"{small} samples for 64-d features: the covariance has rank ≤ {small - 1} < 64, so the value is "
               f"biased and only comparable at equal sample counts"}
    assert (out.n_samples, out.details["n_generated"], out.details["n_reference"]) == (n_gen, n_gen, n_ref)
    assert out.value == pytest.approx(frechet_distance(gen.mean, gen.cov, ref.mean, ref.cov).value, rel=1e-12)
