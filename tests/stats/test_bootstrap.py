import numpy as np
import pytest

from interactive_eyes.stats.bootstrap import bootstrap_ci


def test_interval_matches_normal_theory_for_large_samples():
    rng = np.random.default_rng(3)
    x = rng.normal(10.0, 2.0, 400)
    lo, hi = bootstrap_ci(x)
    se = x.std(ddof=1) / np.sqrt(len(x))
    assert lo == pytest.approx(x.mean() - 1.96 * se, abs=0.25 * se)
    assert hi == pytest.approx(x.mean() + 1.96 * se, abs=0.25 * se)


def test_deterministic_and_degenerate_cases():
    x = [1.0, 2.0, 4.0, 8.0]
    assert bootstrap_ci(x) == bootstrap_ci(x)
    assert bootstrap_ci([5.0, 5.0, 5.0]) == (5.0, 5.0)
    assert bootstrap_ci([1.0]) is None
    with pytest.raises(ValueError):
        bootstrap_ci(np.ones((2, 2)))


def _exact_distribution(x, statistic=np.mean):
    """Every one of the n^n equally likely ordered resamples of a small sample: the exact
    bootstrap distribution of ``statistic`` (values sorted, each with probability 1/n^n)."""
    import itertools

    n = len(x)
    values = [statistic(np.asarray([x[i] for i in idx])) for idx in itertools.product(range(n), repeat=n)]
    return np.sort(values)


def test_exact_enumeration_of_the_27_resamples_for_n_3():
    x = [0.0, 1.0, 10.0]
    exact = _exact_distribution(x)
    assert len(exact) == 27
    # by hand: the means (b + 10 c) / 3 of the 10 multisets; e.g. P(mean = 0) = P(all three are 0) = 1/27,
    # P(mean = 11/3) = P({0, 1, 10} in some order) = 6/27
    support, counts = np.unique(np.round(exact * 3).astype(int), return_counts=True)
    assert support.tolist() == [0, 1, 2, 3, 10, 11, 12, 20, 21, 30]
    assert counts.tolist() == [1, 3, 3, 1, 3, 6, 3, 3, 3, 1]

    # 10 % and 90 % quantiles: around them the exact CDF jumps at 1/27, 4/27 and 23/27, 26/27, each
    # at least 0.048 away: 7 times the 0.0067 sampling error of a CDF from 2000 resamples
    level = 0.80
    cdf = np.arange(1, 28) / 27
    lo_exact = exact[np.searchsorted(cdf, 0.10)]
    hi_exact = exact[np.searchsorted(cdf, 0.90)]
    assert (lo_exact, hi_exact) == (1 / 3, 7.0)  # means of {0, 0, 1} and {1, 10, 10}
    lo, hi = bootstrap_ci(x, level=level)
    assert (lo, hi) == pytest.approx((lo_exact, hi_exact), abs=1e-12)

    # every resampled mean is one of the 10 exact values, with the exact frequencies (chi-square)
    from scipy import stats

    rng = np.random.default_rng(0)  # the same draws as bootstrap_ci's default seed
    means = np.asarray(x)[rng.integers(0, 3, size=(2000, 3))].mean(1)
    got = np.unique(np.round(means * 3).astype(int), return_counts=True)
    assert got[0].tolist() == support.tolist()
    assert stats.chisquare(got[1], counts / 27 * 2000).pvalue > 0.01


def test_equals_scipy_bootstrap_percentile_on_the_same_resamples():
    """scipy.stats.bootstrap (percentile method) given the same generator draws the same index
    matrix (integers(0, n, (B, n))), so both intervals are the same numbers."""
    from scipy import stats

    x = np.random.default_rng(5).gamma(2.0, 1.5, 29)  # skewed, 29 clips like the benchmark
    for level, statistic in ((0.95, np.mean), (0.90, np.median)):
        ours = bootstrap_ci(x, level=level, statistic=statistic)
        ref = stats.bootstrap((x,), statistic, n_resamples=2000, confidence_level=level, method="percentile",
                              random_state=np.random.default_rng(0), vectorized=True).confidence_interval
        assert ours == pytest.approx((ref.low, ref.high), rel=1e-12)
        assert ours[0] < statistic(x) < ours[1]
