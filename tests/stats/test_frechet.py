"""Fréchet distance and mergeable Gaussian statistics: analytic cases and pytorch-fid parity."""

import warnings

import numpy as np
import pytest

from interactive_eyes.stats.frechet import (
    GaussianStats,
    frechet_distance,
    load_mu_sigma,
    sample_size_problem,
    trace_sqrt_product_eigh,
)


def _random_cov(rng, d, n=None):
    x = rng.normal(size=(n or 4 * d, d))
    return np.cov(x, rowvar=False)


def test_identical_gaussians_give_zero():
    rng = np.random.default_rng(0)
    mu, sigma = rng.normal(size=16), _random_cov(rng, 16)
    res = frechet_distance(mu, sigma, mu, sigma)
    assert res.method == "sqrtm"
    assert abs(res.value) < 1e-9


def test_mean_shift_only_gives_squared_shift():
    rng = np.random.default_rng(1)
    sigma = _random_cov(rng, 12)
    mu = rng.normal(size=12)
    shift = rng.normal(size=12)
    for method in ("sqrtm", "eigh"):
        res = frechet_distance(mu, sigma, mu + shift, sigma, method=method)
        assert res.value == pytest.approx(float(shift @ shift), rel=1e-8, abs=1e-9)


def test_diagonal_case_closed_form():
    # N(0, diag(a)) vs N(0, diag(b)): d² = Σ (√a − √b)²
    a = np.array([1.0, 4.0, 9.0, 0.25])
    b = np.array([4.0, 1.0, 1.0, 1.0])
    expected = float(((np.sqrt(a) - np.sqrt(b)) ** 2).sum())
    for method in ("sqrtm", "eigh"):
        assert frechet_distance(np.zeros(4), np.diag(a), np.zeros(4), np.diag(b), method=method).value == \
            pytest.approx(expected, rel=1e-10)


def test_matches_pytorch_fid_calculate_frechet_distance():
    from pytorch_fid.fid_score import calculate_frechet_distance

    rng = np.random.default_rng(2)
    for d in (8, 64):
        mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
        s1, s2 = _random_cov(rng, d), _random_cov(rng, d)
        ours = frechet_distance(mu1, s1, mu2, s2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy >= 1.16 deprecates the `disp` argument pytorch-fid passes
            ref = calculate_frechet_distance(mu1, s1, mu2, s2)
        assert ours.value == pytest.approx(float(ref), rel=1e-10)
        assert ours.details["trace_sqrt_rel_diff"] < 1e-8  # the two routes agree on well-posed inputs


def test_rank_deficient_covariances_fall_back_and_record_it():
    # 5 samples in 40 dimensions: both covariances have rank 4; sqrtm of the singular product
    # gives a garbage imaginary part or NaN. The result must be finite, non-negative and equal
    # to the eigen route, and the route must be recorded.
    rng = np.random.default_rng(3)
    d = 40
    x1, x2 = rng.normal(size=(5, d)), rng.normal(size=(5, d)) + 0.5
    s1, s2 = np.cov(x1, rowvar=False), np.cov(x2, rowvar=False)
    res = frechet_distance(x1.mean(0), s1, x2.mean(0), s2)
    eig = frechet_distance(x1.mean(0), s1, x2.mean(0), s2, method="eigh")
    assert np.isfinite(res.value) and res.value >= -1e-9
    assert res.method in ("sqrtm", "sqrtm+eps", "eigh")
    if res.method == "eigh":
        assert res.fallback_reason
    assert res.value == pytest.approx(eig.value, rel=1e-5)


def test_trace_sqrt_product_eigh_equals_sum_of_sqrt_eigenvalues():
    rng = np.random.default_rng(4)
    s1, s2 = _random_cov(rng, 10), _random_cov(rng, 10)
    w = np.linalg.eigvals(s1 @ s2)  # real, non-negative for a product of SPD matrices
    assert trace_sqrt_product_eigh(s1, s2) == pytest.approx(float(np.sqrt(w.real).sum()), rel=1e-10)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="differ in length"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.array([np.nan, 0]), np.eye(2), np.zeros(2), np.eye(2))


def test_gaussian_stats_match_numpy_mean_and_cov():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(200, 7)) * 3 + 10  # offset mean: the sums must not lose the covariance
    st = GaussianStats(7).update(x[:50]).update(x[50:])
    np.testing.assert_allclose(st.mean, x.mean(0), rtol=1e-13)
    np.testing.assert_allclose(st.cov, np.cov(x, rowvar=False), rtol=1e-10, atol=1e-12)


def test_shards_merge_to_the_one_pass_statistics_and_distance():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(300, 24)).astype(np.float32)
    ref = GaussianStats(24).update(rng.normal(size=(400, 24)) + 0.3)
    one = GaussianStats(24).update(x)
    shards = [GaussianStats(24).update(x[i:i + 70]) for i in range(0, 300, 70)]
    # through the storage format, as the engine does with per-clip results
    merged = GaussianStats.merged(GaussianStats.from_arrays(s.to_arrays()) for s in shards)
    assert merged.count == one.count == 300
    np.testing.assert_allclose(merged.sum, one.sum, rtol=1e-12)
    np.testing.assert_allclose(merged.sum_outer, one.sum_outer, rtol=1e-12)
    d_one = frechet_distance(one.mean, one.cov, ref.mean, ref.cov).value
    d_merged = frechet_distance(merged.mean, merged.cov, ref.mean, ref.cov).value
    assert d_merged == pytest.approx(d_one, rel=1e-10)


def test_to_arrays_is_float64_and_round_trips():
    rng = np.random.default_rng(7)
    st = GaussianStats(5).update(rng.normal(size=(9, 5)))
    arrays = st.to_arrays()
    assert all(a.dtype == np.float64 for a in arrays.values())
    back = GaussianStats.from_arrays(arrays)
    np.testing.assert_array_equal(back.sum_outer, st.sum_outer)
    assert back.count == 9


def test_merge_rejects_other_dimension_and_bad_shapes():
    with pytest.raises(ValueError, match="merge"):
        GaussianStats(3).merge(GaussianStats(4))
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        GaussianStats(3).update(np.zeros((2, 4)))


def test_save_load_npz_with_metadata_and_pytorch_fid_keys(tmp_path):
    rng = np.random.default_rng(8)
    st = GaussianStats(6).update(rng.normal(size=(30, 6)))
    p = st.save(tmp_path / "ref.npz", extractor="pytorch-fid-inception-v3", weights_sha256="ab" * 32)
    back, meta = GaussianStats.load(p)
    assert meta == {"extractor": "pytorch-fid-inception-v3", "weights_sha256": "ab" * 32}
    np.testing.assert_allclose(back.cov, st.cov)
    mu, sigma = load_mu_sigma(p)
    np.testing.assert_allclose(sigma, st.cov)


def test_sample_size_problem():
    assert sample_size_problem(2049, 2048) is None
    assert "rank" in sample_size_problem(2048, 2048)
    assert sample_size_problem(1, 4)


def test_eps_retry_and_imaginary_fallback_are_recorded(monkeypatch):
    # Force the failure modes pytorch-fid handles (spec §2.1): a non-finite sqrtm triggers the
    # eps retry; a large imaginary diagonal (pytorch-fid raises) falls back to the eigen route.
    import interactive_eyes.stats.frechet as fr

    rng = np.random.default_rng(9)
    s1, s2 = _random_cov(rng, 6), _random_cov(rng, 6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    good = frechet_distance(mu1, s1, mu2, s2)
    real_sqrtm = fr._sqrtm
    calls = []

    def nan_once(a):
        calls.append(a)
        return np.full_like(a, np.nan) if len(calls) == 1 else real_sqrtm(a)

    monkeypatch.setattr(fr, "_sqrtm", nan_once)
    res = frechet_distance(mu1, s1, mu2, s2)
    assert res.method == "sqrtm+eps" and res.eps == 1e-6 and len(calls) == 2
    np.testing.assert_allclose(calls[1], (s1 + 1e-6 * np.eye(6)) @ (s2 + 1e-6 * np.eye(6)))
    assert res.value == pytest.approx(good.value, rel=1e-5)

    monkeypatch.setattr(fr, "_sqrtm", lambda a: real_sqrtm(a) + 0.5j * np.eye(a.shape[0]))
    res = frechet_distance(mu1, s1, mu2, s2)
    assert res.method == "eigh" and "imaginary" in res.fallback_reason
    assert res.value == pytest.approx(good.value, rel=1e-8)

    monkeypatch.setattr(fr, "_sqrtm", lambda a: real_sqrtm(a) + 1e-4j * np.eye(a.shape[0]))
    res = frechet_distance(mu1, s1, mu2, s2)  # within pytorch-fid's atol=1e-3: real part is used
    assert res.method == "sqrtm" and res.value == pytest.approx(good.value, rel=1e-10)
