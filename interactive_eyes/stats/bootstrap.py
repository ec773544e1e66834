"""Bootstrap confidence intervals over clips.

The benchmark has 29 clips: a mean over so few clips needs an interval. We resample clips with
replacement (percentile bootstrap, 2000 resamples, fixed seed 0 so results files are
reproducible) and report the 2.5 / 97.5 percentiles of the resampled means.
"""

from __future__ import annotations

import numpy as np

DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 0
DEFAULT_LEVEL = 0.95


def bootstrap_ci(
    values,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    level: float = DEFAULT_LEVEL,
    seed: int = DEFAULT_SEED,
    statistic=np.mean,
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of ``statistic`` over ``values``; None for fewer than 2 values."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError("bootstrap_ci expects a 1-D sequence of per-clip values")
    if len(x) < 2:
        return None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(n_resamples, len(x)))
    stats = statistic(x[idx], axis=1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(stats, [alpha, 1.0 - alpha])
    return float(lo), float(hi)
