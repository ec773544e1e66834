"""Fréchet distance and mergeable Gaussian statistics: analytic cases and pytorch-fid parity."""

import warnings

import numpy as np
import pytest

from interactive_eyes.stats.frechet import (
    GaussianStats,
    SampleSizeWarning,
    frechet_distance,
    frechet_to_reference,
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


def test_matches_pytorch_fid_calculate_frechet_distance(pytorch_fid_on_current_scipy):
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
    assert res.method in ("sqrtm", "sqrtm+eps", "eigh")
    if res.method == "eigh":
        assert res.fallback_reason
    # independent value: Tr sqrt(S1 S2) = sum of sqrt of the eigenvalues of S1^1/2 S2 S1^1/2 (PSD)
    w1, v1 = np.linalg.eigh(s1)
    r1 = (v1 * np.sqrt(np.clip(w1, 0, None))) @ v1.T
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh(r1 @ s2 @ r1), 0, None)).sum()
    dmu = x1.mean(0) - x2.mean(0)
    expected = dmu @ dmu + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt
    assert res.value == pytest.approx(expected, rel=1e-5) and eig.value == pytest.approx(expected, rel=1e-8)
    # analytic rank-deficient case: the same 5 points shifted by c have S1 = S2, so FD = |c|^2
    c = np.linspace(-1, 1, d)
    shifted = frechet_distance(x1.mean(0), s1, x1.mean(0) + c, s1)
    assert shifted.value == pytest.approx(c @ c, rel=1e-6)


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
    # full rank needs n >= dim + 1: the boundary on both sides, with the exact wording
    assert sample_size_problem(2049, 2048) is None
    assert sample_size_problem(2048, 2048) == ("2048 samples for 2048-d features: the covariance has rank ≤ 2047 "
                                               "< 2048, so the value is biased and only comparable at equal "
                                               "sample counts")
    assert sample_size_problem(2, 1) is None
    assert sample_size_problem(1, 4) == "1 sample(s): a covariance needs at least 2"
    assert sample_size_problem(0, 4) == "0 sample(s): a covariance needs at least 2"


@pytest.mark.parametrize("n_gen, n_ref", [(6, 40), (40, 6), (6, 6), (40, 40)],
                         ids=["generated-small", "reference-small", "both-small", "both-enough"])
def test_each_set_is_checked_with_its_own_count(n_gen, n_ref):
    """The check must read the generated count for the generated set and the reference count for
    the reference set: with one small and one large set, only the small one is flagged, by its
    own number (a swapped or copied count flags the wrong set or both)."""
    d = 12
    rng = np.random.default_rng(n_gen * 100 + n_ref)
    gen = GaussianStats(d).update(rng.normal(size=(n_gen, d)))
    x_ref = rng.normal(size=(n_ref, d)) + 0.3
    mu_r, sigma_r = x_ref.mean(0), np.cov(x_ref, rowvar=False)
    expected = {label: f"{n} samples for 12-d features: the covariance has rank ≤ {n - 1} < 12, so the value "
                       f"is biased and only comparable at equal sample counts"
                for label, n in (("generated", n_gen), ("reference", n_ref)) if n <= d}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value, details = frechet_to_reference("fid", gen, mu_r, sigma_r, n_ref, d, {"k": 1})
    assert [str(w.message) for w in caught if w.category is SampleSizeWarning] == \
        [f"fid: {label} set: {msg}" for label, msg in expected.items()]
    assert details.get("sample_size_warning", {}) == expected and details["k"] == 1
    assert value == frechet_distance(gen.mean, gen.cov, mu_r, sigma_r).value


def test_reference_without_a_count_is_not_checked_and_one_generated_sample_has_no_value():
    d = 4
    rng = np.random.default_rng(1)
    mu_r, sigma_r = np.zeros(d), np.eye(d)
    gen = GaussianStats(d).update(rng.normal(size=(50, d)))
    value, details = frechet_to_reference("fvd", gen, mu_r, sigma_r, None, d, {})
    assert "sample_size_warning" not in details
    assert value == frechet_distance(gen.mean, gen.cov, mu_r, sigma_r).value
    one = GaussianStats(d).update(rng.normal(size=(1, d)))
    with pytest.warns(SampleSizeWarning, match="fvd: generated set: 1 sample"):
        value, details = frechet_to_reference("fvd", one, mu_r, sigma_r, 500, d, {})
    assert value is None and details == {"reason": "1 sample(s): a covariance needs at least 2"}


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
