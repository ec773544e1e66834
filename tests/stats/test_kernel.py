"""Kernel distances: torch-fidelity's own KID function on identical features, a pair-by-pair
reference, and analytic cases (identical sets, a known shift of a known distribution)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from interactive_eyes.stats.kernel import (
    MIN_SAMPLES,
    kernel_distance,
    mmd2_unbiased,
    polynomial_kernel,
    polynomial_mmd2,
    sample_size_problem,
)


def _tf_kid(f1: np.ndarray, f2: np.ndarray, **kw) -> dict:
    torch = pytest.importorskip("torch")
    metric_kid = pytest.importorskip("torch_fidelity.metric_kid")
    return metric_kid.kid_features_to_metric(torch.from_numpy(f1), torch.from_numpy(f2), verbose=False, **kw)


def _features(seed: int, n: int, d: int, shift: float = 0.0) -> np.ndarray:
    # Inception pool features are non-negative (post-ReLU averages): gamma-distributed stand-ins
    return np.random.default_rng(seed).gamma(2.0, 0.3, size=(n, d)) + shift


@pytest.mark.parametrize("n1, n2, d, subsets, subset_size", [
    (1100, 1050, 16, 100, 1000),  # torch-fidelity's defaults (subsets 100, size 1000, seed 2020)
    (300, 260, 64, 20, 200),
    (150, 150, 2048, 5, 150),  # the full FID feature size; whole sets, so every subset is the set
])
def test_kid_equals_torch_fidelity_on_the_same_features(n1, n2, d, subsets, subset_size):
    f1 = _features(1, n1, d)
    f2 = _features(2, n2, d, shift=0.05)
    ours = kernel_distance(f1, f2, subsets=subsets, subset_size=subset_size)
    ref = _tf_kid(f1, f2, kid_subsets=subsets, kid_subset_size=subset_size)
    assert ours.mean == pytest.approx(ref["kernel_inception_distance_mean"], rel=1e-6)
    assert ours.std == pytest.approx(ref["kernel_inception_distance_std"], rel=1e-6, abs=1e-15)
    assert ours.mean > 0 and (ours.n1, ours.n2, ours.subset_size, ours.seed) == (n1, n2, subset_size, 2020)


def test_subset_size_is_clipped_to_the_smaller_set_where_torch_fidelity_refuses():
    f1, f2 = _features(3, 120, 8), _features(4, 90, 8, shift=0.1)
    ours = kernel_distance(f1, f2)  # default size 1000 -> 90
    assert (ours.subset_size, ours.requested_subset_size, ours.subsets) == (90, 1000, 100)
    ref = _tf_kid(f1, f2, kid_subset_size=90)
    assert ours.mean == pytest.approx(ref["kernel_inception_distance_mean"], rel=1e-6)
    with pytest.raises(ValueError, match="KID subset size 1000"):  # torch-fidelity's own refusal
        _tf_kid(f1, f2)


def test_estimator_equals_its_definition_pair_by_pair():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(7, 3)), rng.normal(size=(7, 3)) + 0.4

    def k(a, b):
        return (a @ b / 3 + 1.0) ** 3

    m = 7
    xx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    assert polynomial_mmd2(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)
    assert polynomial_kernel(x, y)[2, 5] == pytest.approx(k(x[2], y[5]), rel=1e-14)


def test_identical_sets_give_the_analytic_small_negative_value():
    """x = y: MMD² = -2/(m-1) · (mean of diag K - mean of K), exactly; it is O(1/m) and tiny
    next to the distance of a shifted set (the estimator's noise floor)."""
    f = _features(6, 400, 32)
    kxx = polynomial_kernel(f, f)
    m = f.shape[0]
    expected = -2.0 / (m - 1) * (np.mean(np.diag(kxx)) - np.mean(kxx))
    res = kernel_distance(f, f, subset_size=m, subsets=3)
    assert res.mean == pytest.approx(expected, rel=1e-9) and res.std < 1e-12 and res.mean < 0
    shifted = kernel_distance(f, f + 0.3, subset_size=m, subsets=3)
    assert abs(res.mean) < 0.05 * shifted.mean


def test_two_samples_of_one_distribution_are_zero_within_the_subset_spread():
    f1, f2 = _features(7, 600, 16), _features(8, 600, 16)
    res = kernel_distance(f1, f2, subset_size=200, subsets=50)
    assert abs(res.mean) < 3 * res.std + 1e-12 and res.std > 0


def test_known_shift_of_a_uniform_distribution():
    """d = 1: k(x, y) = (xy + 1)^3 has the feature map (1, √3 x, √3 x², x³), so the population
    MMD² is 3(E x − E y)² + 3(E x² − E y²)² + (E x³ − E y³)². For x ~ U(−1, 1), y = x' + c:
    E x = 0, E x² = 1/3, E x³ = 0; E y = c, E y² = 1/3 + c², E y³ = c³ + c."""
    c = 0.5
    truth = 3 * c**2 + 3 * c**4 + (c**3 + c) ** 2  # 1.328125
    rng = np.random.default_rng(9)
    x = rng.uniform(-1, 1, size=(4000, 1))
    y = rng.uniform(-1, 1, size=(4000, 1)) + c
    res = kernel_distance(x, y, subsets=20, subset_size=1000)
    assert res.mean == pytest.approx(truth, rel=0.03)


def test_seed_and_order_decide_the_subsets():
    f1, f2 = _features(10, 300, 8), _features(11, 300, 8, shift=0.05)
    a = kernel_distance(f1, f2, subset_size=100, subsets=10)
    b = kernel_distance(f1.astype(np.float32).astype(np.float64), f2, subset_size=100, subsets=10)
    c = kernel_distance(f1, f2, subset_size=100, subsets=10, seed=1)
    assert a.mean == b.mean or a.mean == pytest.approx(b.mean, rel=1e-6)
    assert a.mean != c.mean and a.values.shape == (10,)


def test_sample_size_warning_and_bad_input():
    assert sample_size_problem(MIN_SAMPLES, MIN_SAMPLES) is None
    msg = sample_size_problem(29, 500)
    assert msg.startswith("generated set has 29 samples (< 100)") and "reference" not in msg
    assert "generated set has 3 and reference set has 4" in sample_size_problem(3, 4)
    with pytest.raises(ValueError, match="at least 2 samples"):
        kernel_distance(np.ones((1, 4)), np.ones((5, 4)))
    with pytest.raises(ValueError, match="same d"):
        kernel_distance(np.ones((5, 4)), np.ones((5, 3)))
    with pytest.raises(ValueError, match="NaN"):
        kernel_distance(np.full((5, 4), np.nan), np.ones((5, 4)))
    with pytest.raises(ValueError, match="m x m"):
        mmd2_unbiased(np.ones((1, 1)), np.ones((1, 1)), np.ones((1, 1)))
