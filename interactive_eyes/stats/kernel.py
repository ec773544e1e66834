"""Kernel distances (KID, KVD): the unbiased MMD² with a cubic polynomial kernel, over subsets.

Pure functions, arrays in, numbers out. The definitions are torch-fidelity's (0.4.0,
``torch_fidelity/metric_kid.py``, itself from Bińkowski et al., "Demystifying MMD GANs", 2018),
so ie-bench's KID equals torch-fidelity's ``kid_features_to_metric`` on the same features:

* kernel ``k(x, y) = (x·y / d + 1)^3`` (degree 3, gamma = 1/d, coef0 = 1; d = feature size);
* estimator, for two samples of equal size m (``mmd2_unbiased``)::

      MMD² = Σ_{i≠j} k(x_i, x_j) / (m(m−1)) + Σ_{i≠j} k(y_i, y_j) / (m(m−1)) − 2 Σ_{i,j} k(x_i, y_j) / m²

  torch-fidelity's ``mmd_est="unbiased"``: the within-set sums drop their diagonals, the cross
  term keeps all m² pairs. Its expectation is the population MMD² (hence "unbiased"); it can be
  slightly negative when the two sets come from the same distribution;
* subsets (``kernel_distance``): ``subsets`` times (default 100), draw ``m`` rows of each set
  without replacement — first set 1, then set 2, from one ``numpy.random.RandomState(seed)``
  (default seed 2020: torch-fidelity's ``rng_seed``) — and evaluate the estimator; the result is
  the mean and the population standard deviation (``np.std``, ddof 0) over the subsets.

One difference, by design: torch-fidelity refuses sets smaller than its subset size (1000);
ie-bench clips the subset size to the smaller set, ``m = min(subset_size, n1, n2)`` (the original
MMD-GAN code does the same), so a 29-clip benchmark still has a KID. The estimator stays
unbiased for any m ≥ 2; only its variance grows as m falls. When m equals both set sizes every
subset is the whole set (a permutation, which leaves the estimator unchanged), and the std over
subsets is then 0 (up to summation rounding) — it measures subsampling spread, not the estimator's standard error.

Arithmetic is float64 (features are cast), so the result does not depend on whether the features
were stored as float32 or float64; torch-fidelity computes in the dtype of its input tensors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

DEGREE = 3  # torch-fidelity kid_kernel_poly_degree
COEF0 = 1.0  # torch-fidelity kid_kernel_poly_coef0 (gamma None -> 1/d)
SUBSETS = 100  # torch-fidelity kid_subsets
SUBSET_SIZE = 1000  # torch-fidelity kid_subset_size
SEED = 2020  # torch-fidelity rng_seed
# Below this many samples in either set, results carry a warning. The estimate stays unbiased, but
# its spread grows roughly like 1/m: a chosen, documented threshold (docs/metrics_fid_fvd_identity.md,
# "KID and KVD"), a tenth of torch-fidelity's standard subset size of 1000.
MIN_SAMPLES = 100


class KernelSampleSizeWarning(UserWarning):
    """A kernel distance computed from fewer than ``MIN_SAMPLES`` samples in one set."""


def polynomial_kernel(x: np.ndarray, y: np.ndarray, degree: int = DEGREE, gamma: float | None = None,
                      coef0: float = COEF0) -> np.ndarray:
    """``(x @ y.T * gamma + coef0) ** degree`` with ``gamma = 1/d`` by default (torch-fidelity's ``kernel_poly``)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"feature arrays must be (n, d) with the same d, got {x.shape} and {y.shape}")
    g = 1.0 / x.shape[1] if gamma is None else float(gamma)
    return (x @ y.T * g + coef0) ** degree


def mmd2_unbiased(k_xx: np.ndarray, k_xy: np.ndarray, k_yy: np.ndarray) -> float:
    """The MMD² estimate of two equal-size samples from their kernel matrices (module docstring)."""
    m = k_xx.shape[0]
    if m < 2 or k_xx.shape != (m, m) or k_xy.shape != (m, m) or k_yy.shape != (m, m):
        raise ValueError(f"kernel matrices must be m x m with m >= 2, got {k_xx.shape}, {k_xy.shape}, {k_yy.shape}")
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.sum() / (m * m))


def polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """MMD² of two equal-size feature sets with the cubic kernel."""
    return mmd2_unbiased(polynomial_kernel(x, x), polynomial_kernel(x, y), polynomial_kernel(y, y))


@dataclass
class KernelResult:
    """A kernel distance and how it was obtained (recorded in results)."""

    mean: float
    std: float
    n1: int
    n2: int
    subsets: int
    subset_size: int
    requested_subset_size: int
    seed: int
    warning: str | None = None
    values: np.ndarray = field(default=None, repr=False)  # the per-subset estimates

    def to_dict(self) -> dict[str, Any]:
        return {"std": self.std, "subsets": self.subsets, "subset_size": self.subset_size,
                "requested_subset_size": self.requested_subset_size, "seed": self.seed,
                "kernel": f"(x.y/d + {COEF0:g})^{DEGREE}", "estimator": "unbiased MMD^2 (torch-fidelity)"}


def sample_size_problem(n1: int, n2: int, minimum: int = MIN_SAMPLES) -> str | None:
    """Why the sets are too small for a trustworthy kernel distance, or None."""
    small = [f"{label} set has {n}" for label, n in (("generated", n1), ("reference", n2)) if n < minimum]
    if not small:
        return None
    return (f"{' and '.join(small)} samples (< {minimum}): the estimate is unbiased but noisy; "
            f"compare values only with their std")


def kernel_distance(features1: np.ndarray, features2: np.ndarray, *, subsets: int = SUBSETS,
                    subset_size: int = SUBSET_SIZE, seed: int = SEED) -> KernelResult:
    """Mean and std of the MMD² over random subsets (torch-fidelity's ``kid_features_to_metric``,
    with the subset size clipped to the smaller set)."""
    f1 = np.asarray(features1)
    f2 = np.asarray(features2)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
        raise ValueError(f"feature arrays must be (n, d) with the same d, got {f1.shape} and {f2.shape}")
    for label, f in (("first", f1), ("second", f2)):
        if not np.isfinite(f).all():
            raise ValueError(f"{label} feature set contains NaN or infinity")
    if subsets < 1 or subset_size < 2:
        raise ValueError(f"need subsets >= 1 and subset_size >= 2, got {subsets} and {subset_size}")
    n1, n2 = f1.shape[0], f2.shape[0]
    m = min(int(subset_size), n1, n2)
    if m < 2:
        raise ValueError(f"a kernel distance needs at least 2 samples in each set, got {n1} and {n2}")
    f1 = f1.astype(np.float64, copy=False)
    f2 = f2.astype(np.float64, copy=False)
    rng = np.random.RandomState(seed)
    values = np.zeros(int(subsets))
    for i in range(int(subsets)):
        # the draw order (set 1, then set 2, each subset in turn) is torch-fidelity's
        a = f1[rng.choice(n1, m, replace=False)]
        b = f2[rng.choice(n2, m, replace=False)]
        values[i] = polynomial_mmd2(a, b)
    return KernelResult(mean=float(np.mean(values)), std=float(np.std(values)), n1=n1, n2=n2,
                        subsets=int(subsets), subset_size=m, requested_subset_size=int(subset_size),
                        seed=int(seed), warning=sample_size_problem(n1, n2), values=values)
