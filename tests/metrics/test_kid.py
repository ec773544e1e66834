"""KID on FID's Inception features against torch-fidelity's own KID function, through the metric's
per-clip storage, reference folders and ``ie-bench stats`` files.

The FID Inception is pytorch-fid's architecture with random weights saved as a plain state dict
(the real file's format), registered under its own SHA-256, as in test_fid.py; dims=64 (pytorch-fid
block 0) keeps it fast — the kernel arithmetic does not depend on the feature size
(tests/stats/test_kernel.py checks 2048-d).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pfi = pytest.importorskip("pytorch_fid.inception")
metric_kid = pytest.importorskip("torch_fidelity.metric_kid")

from click.testing import CliRunner  # noqa: E402

from interactive_eyes.app.cli import main  # noqa: E402
from interactive_eyes.metrics.base import FrameData  # noqa: E402
from interactive_eyes.metrics.kid import KID  # noqa: E402
from interactive_eyes.stats.frechet import GaussianStats  # noqa: E402
from interactive_eyes.stats.kernel import KernelSampleSizeWarning, kernel_distance  # noqa: E402
from interactive_eyes.stats.reference import ReferenceError  # noqa: E402
from weight_files import random_fid_inception, register_file  # noqa: E402  (the shared helper module of this folder)


@pytest.fixture(scope="module")
def random_fid_weights(tmp_path_factory):
    return random_fid_inception(tmp_path_factory.mktemp("kidw") / "pt_inception-random.pth", 4)


@pytest.fixture
def registered(random_fid_weights, monkeypatch):
    register_file(monkeypatch, "pt_inception", random_fid_weights, sha256_prefix=None)
    monkeypatch.setenv("IE_BENCH_WEIGHT_PT_INCEPTION", str(random_fid_weights))
    return random_fid_weights


class StandInKID(KID):
    """KID with a cheap deterministic 64-d feature map (per-channel block means of the frame), for
    the tests of storage, merging and the set-level step; the real Inception path is tested above
    and in test_fid.py."""

    def features(self, frames):
        x = np.stack(frames).astype(np.float32) / 255.0  # B, H, W, 3
        b, h, w, _ = x.shape
        blocks = x[:, : h // 4 * 4, : w // 4 * 4].reshape(b, 4, h // 4, 4, w // 4, 3).mean(axis=(2, 4))
        return np.concatenate([blocks.reshape(b, -1), blocks.reshape(b, -1)[:, :16] ** 2], axis=1)


def _images(seed: int, n: int, size=(40, 48), shift=0.0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        coarse = rng.uniform(0, 1, size=(5, 6, 3))
        img = np.kron(coarse, np.ones((size[0] // 5 + 1, size[1] // 6 + 1, 1)))[: size[0], : size[1]]
        out.append((np.clip(img + shift + rng.normal(0, 0.05, img.shape), 0, 1) * 255).round().astype(np.uint8))
    return out


def _write_pngs(folder, frames):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"{i:04d}.png")
    return folder


def _score(metric, clips):
    out = []
    for frames in clips:
        state = metric.start(None)
        for i, f in enumerate(frames):
            metric.update(state, FrameData(index=i, time=i / 25, rgb=f))
        out.append(metric.finish(state))
    return out


def _roundtrip(stats: dict, path) -> dict:
    """What the engine does with a clip's stats: np.savez, then np.load in the set-level step."""
    np.savez(path, **stats)
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _tf(f1: np.ndarray, f2: np.ndarray, m: int) -> dict:
    # identical values, as float64 tensors: torch-fidelity then computes in float64, as ie-bench does
    return metric_kid.kid_features_to_metric(torch.from_numpy(f1.astype(np.float64)),
                                             torch.from_numpy(f2.astype(np.float64)),
                                             kid_subset_size=m, verbose=False)


def test_kid_equals_torch_fidelity_on_the_same_features(registered, tmp_path):
    gen, ref = _images(1, 40), _images(2, 36, shift=0.12)
    metric = KID(dims=64, batch_size=16)
    clips = _score(metric, [gen[:25], gen[25:]])  # two clips: their features are concatenated in order
    stats = [_roundtrip(r.stats, tmp_path / f"c{i}.npz") for i, r in enumerate(clips)]
    assert stats[0]["features"].dtype == np.float32 and stats[0]["features"].shape == (25, 64)
    reference = metric.load_reference(_write_pngs(tmp_path / "ref", ref), progress=False)
    with pytest.warns(KernelSampleSizeWarning):  # 40 and 36 samples: below the documented 100
        res = metric.reduce(stats, reference)

    f_gen, f_ref = metric.features(gen), metric.features(ref)  # the same network, batched differently
    expected = _tf(f_gen, f_ref, 36)
    assert res.value == pytest.approx(expected["kernel_inception_distance_mean"], rel=1e-6)
    assert res.details["kid_std"] == pytest.approx(expected["kernel_inception_distance_std"], rel=1e-6)
    assert res.value > 5 * res.details["kid_std"] > 0  # the sets differ: not a 0 == 0 comparison
    assert (res.n_samples, res.details["n_generated"], res.details["n_reference"]) == (40, 40, 36)
    assert (res.details["subset_size"], res.details["requested_subset_size"], res.details["subsets"]) == (36, 1000, 100)
    assert res.details["n_clips"] == 2


def test_shards_and_resume_give_the_one_pass_value():
    metric = StandInKID(dims=64, batch_size=7)
    gen, ref = _images(3, 120), _images(4, 105, shift=-0.1)
    reference = {"features": metric.features(ref)}
    (whole,) = _score(metric, [gen])
    shards = _score(metric, [gen[:45], gen[45:100], gen[100:]])  # other batch boundaries too
    np.testing.assert_allclose(np.concatenate([s.stats["features"] for s in shards]), whole.stats["features"],
                               rtol=1e-5, atol=1e-6)
    one, three = metric.reduce([whole.stats], reference), metric.reduce([s.stats for s in shards], reference)
    assert three.value == pytest.approx(one.value, rel=1e-5)
    again = metric.reduce([s.stats for s in shards], reference)  # resumed: same stored features, same value
    assert again.value == three.value and again.details == three.details


def test_identical_sets_score_about_zero(tmp_path):
    """The ground truth against itself: the analytic small negative value, far below a shifted set."""
    metric = StandInKID(dims=64)
    frames = _images(5, 120)
    folder = _write_pngs(tmp_path / "gt", frames)
    (clip,) = _score(metric, [frames])
    same = metric.reduce([clip.stats], metric.load_reference(folder, progress=False))
    shifted = metric.reduce([clip.stats], {"features": metric.features(_images(5, 120, shift=0.15))})
    assert abs(same.value) < 0.05 * shifted.value and same.details["kid_std"] < 1e-9


def test_sample_size_warning_below_the_minimum():
    metric = StandInKID(dims=64)
    (clip,) = _score(metric, [_images(6, 30)])
    ref = {"features": metric.features(_images(7, 150))}
    with pytest.warns(KernelSampleSizeWarning, match="kid: generated set has 30 samples"):
        res = metric.reduce([clip.stats], ref)
    assert res.details["sample_size_warning"].startswith("generated set has 30 samples (< 100)")
    assert res.details["subset_size"] == 30 and res.details["min_samples"] == 100
    assert res.value == pytest.approx(kernel_distance(clip.stats["features"], ref["features"]).mean, rel=1e-12)


def test_stats_file_with_features_serves_fid_and_kid_and_old_files_are_refused(registered, tmp_path):
    from interactive_eyes.metrics.fid import FID

    folder = _write_pngs(tmp_path / "ref", _images(8, 12))
    runner = CliRunner()
    out = runner.invoke(main, ["stats", str(folder), "-o", str(tmp_path / "ref.npz"), "--dims", "64"])
    assert out.exit_code == 0, out.output
    assert "12 samples, 64-d (fid), per-sample features stored (for kid)" in out.output
    kid = KID(dims=64)
    from_file = kid.load_reference(tmp_path / "ref.npz")
    from_folder = kid.load_reference(folder, progress=False)
    assert from_file["features"].dtype == np.float32
    np.testing.assert_array_equal(from_file["features"], from_folder["features"])
    fid_arrays = FID(dims=64).load_reference(tmp_path / "ref.npz")  # the same file still serves FID
    assert GaussianStats.from_arrays(fid_arrays).count == 12 and "features" not in fid_arrays
    _, meta = GaussianStats.load(tmp_path / "ref.npz")
    assert meta["features"] == "float32, one row per sample" and meta["metric"] == "fid"

    out = runner.invoke(main, ["stats", str(folder), "-o", str(tmp_path / "old.npz"), "--dims", "64", "--no-features"])
    assert out.exit_code == 0 and "per-sample features" not in out.output
    with pytest.raises(ReferenceError) as err:
        kid.load_reference(tmp_path / "old.npz")
    msg = str(err.value)
    assert msg.startswith(f"{tmp_path / 'old.npz'}: holds no per-sample features, which kid needs") and "\n" not in msg
    np.savez(tmp_path / "pf.npz", mu=np.zeros(64), sigma=np.eye(64))  # a pytorch-fid --save-stats file
    with pytest.raises(ReferenceError, match="holds no per-sample features"):
        kid.load_reference(tmp_path / "pf.npz")
    with pytest.raises(ReferenceError, match="dims=64"):
        KID(dims=192).load_reference(tmp_path / "ref.npz")


def test_registry_and_contract(registered):
    from interactive_eyes.metrics import METRICS

    metric = METRICS.get("kid")(dims=64)
    assert metric.name == "kid" and metric.set_level and not metric.higher_is_better
    assert metric.needs == {"frames", "reference"} and metric.params()["features"] == "float32 per frame"
    assert metric.reference_meta()["metric"] == "fid"
    with pytest.raises(ValueError, match="reference set is required"):
        metric.reduce([{"features": np.ones((3, 64), np.float32)}], None)
    with pytest.raises(ValueError, match="subset_size"):
        KID(subset_size=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", KernelSampleSizeWarning)
        res = metric.reduce([{"features": np.ones((1, 64), np.float32)}], {"features": np.ones((5, 64), np.float32)})
    assert res.value is None and "at least 2" in res.details["reason"]
