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
