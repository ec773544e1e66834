"""Fréchet distance between Gaussians, and the mergeable statistics FID and FVD are built from.

``frechet_distance(mu1, sigma1, mu2, sigma2)`` follows pytorch-fid's ``calculate_frechet_distance``
exactly (spec/metrics.md §2.1), so ie-bench's FID equals pytorch-fid's on the same statistics:

    d² = ‖μ1 − μ2‖² + Tr Σ1 + Tr Σ2 − 2·Tr sqrtm(Σ1 Σ2)

* ``scipy.linalg.sqrtm(Σ1·Σ2)``; if that is not finite, add ``eps·I`` (1e-6) to both covariances
  and take it again (pytorch-fid's retry);
* if the root is complex and the imaginary part of its diagonal exceeds ``atol=1e-3``,
  pytorch-fid raises "Imaginary component". ie-bench instead falls back to the symmetric
  eigen route below and *records* that it did (``FrechetResult.method``/``fallback_reason``),
  so a rank-deficient covariance (fewer samples than dimensions, §2.3) or the scipy
  1.11.2/1.11.3 sqrtm bug never turns into a crash or a silently wrong number;
* otherwise the real part is taken.

The robust route: for symmetric positive semi-definite Σ1, Σ2, Σ1Σ2 is similar to
``A = √Σ1 Σ2 √Σ1`` (symmetric PSD), so ``Tr sqrtm(Σ1Σ2) = Σ_i √λ_i(A)``; both square roots come
from ``numpy.linalg.eigh`` with negative round-off eigenvalues clipped to 0 (the TF-GAN approach
named in §2.3). It is also computed as a cross-check on every call and its disagreement with the
sqrtm route is reported in ``FrechetResult.details``.

``GaussianStats`` holds the float64 sufficient statistics (count, sum, sum of outer products) of
a feature set, so shards and resumed runs merge to the one-pass values (up to float64 rounding
of the summation order, ~1e-15 relative): mean = S/n, covariance = (Q − n·μμᵀ)/(n − 1), which is
``np.cov(features, rowvar=False)`` (unbiased, as pytorch-fid uses).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

PYTORCH_FID_EPS = 1e-6  # pytorch-fid's diagonal offset for a singular product (§2.1)
PYTORCH_FID_IMAG_ATOL = 1e-3  # pytorch-fid's tolerance on the imaginary part of the diagonal (§2.1)


class SampleSizeWarning(UserWarning):
    """Fewer samples than feature dimensions: the covariance is rank-deficient (spec §2.3, §3.4)."""


def sample_size_problem(n: int, dim: int) -> str | None:
    """Why ``n`` samples are too few for a ``dim``-dimensional covariance, or None.

    The unbiased covariance of n samples has rank at most n − 1, so it is full rank only when
    n ≥ dim + 1 (spec §2.3: FID needs at least 2048 samples; ≥ 5000 advised).
    """
    if n < 2:
        return f"{n} sample(s): a covariance needs at least 2"
    if n <= dim:
        return (f"{n} samples for {dim}-d features: the covariance has rank ≤ {n - 1} < {dim}, so the value "
                f"is biased and only comparable at equal sample counts")
    return None


@dataclass
class FrechetResult:
    """The distance and how it was obtained (recorded in results)."""

    value: float
    method: str  # "sqrtm" | "sqrtm+eps" | "eigh"
    eps: float = 0.0  # diagonal offset that was applied (0 unless the retry happened)
    fallback_reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "method": self.method, "eps": self.eps,
                "fallback_reason": self.fallback_reason, **self.details}


def _sym_sqrt(m: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((m + m.T) / 2.0)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def trace_sqrt_product_eigh(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """Tr sqrtm(Σ1 Σ2) through symmetric eigendecompositions (robust to rank deficiency)."""
    s1 = _sym_sqrt(sigma1)
    a = s1 @ sigma2 @ s1
    w = np.linalg.eigvalsh((a + a.T) / 2.0)
    return float(np.sqrt(np.clip(w, 0.0, None)).sum())


def _sqrtm(a: np.ndarray) -> np.ndarray:
    from scipy import linalg

    with warnings.catch_warnings():
        # scipy < 1.16 warns (and used to print) when the error estimate is large; the result
        # is checked below exactly as pytorch-fid checks it.
        warnings.simplefilter("ignore")
        out = linalg.sqrtm(a)
    return out[0] if isinstance(out, tuple) else out


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, *,
                     eps: float = PYTORCH_FID_EPS, method: str = "sqrtm") -> FrechetResult:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (see the module docstring).

    ``method="sqrtm"`` (default) is pytorch-fid's route with a recorded eigen fallback;
    ``method="eigh"`` uses the symmetric eigen route only.
    """
    mu1 = np.atleast_1d(np.asarray(mu1, dtype=np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    if mu1.shape != mu2.shape:
        raise ValueError(f"mean vectors differ in length: {mu1.shape} vs {mu2.shape}")
    if sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(f"covariances {sigma1.shape} and {sigma2.shape} do not match means of length {mu1.size}")
    for name, arr in (("mu1", mu1), ("mu2", mu2), ("sigma1", sigma1), ("sigma2", sigma2)):
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or infinity")
    if method not in ("sqrtm", "eigh"):
        raise ValueError(f"method must be 'sqrtm' or 'eigh', not {method!r}")

    diff = mu1 - mu2
    base = float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2))
    tr_eigh = trace_sqrt_product_eigh(sigma1, sigma2)
    details: dict[str, Any] = {"mean_term": float(diff.dot(diff)), "trace_sqrt_eigh": tr_eigh}
    if method == "eigh":
        return FrechetResult(base - 2.0 * tr_eigh, "eigh", details=details)

    used_eps = 0.0
    covmean = _sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        used_eps = eps
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = _sqrtm((sigma1 + offset).dot(sigma2 + offset))
    reason = None
    if not np.isfinite(covmean).all():
        reason = "sqrtm not finite even after the eps offset"
    elif np.iscomplexobj(covmean):
        imag = np.diagonal(covmean).imag
        details["max_imag"] = float(np.max(np.abs(covmean.imag)))
        if not np.allclose(imag, 0, atol=PYTORCH_FID_IMAG_ATOL):
            reason = f"imaginary component {details['max_imag']:.3g} (pytorch-fid would raise)"
        covmean = covmean.real
    if reason is not None:
        return FrechetResult(base - 2.0 * tr_eigh, "eigh", 0.0, reason, details)
    tr_covmean = float(np.trace(covmean))
    details["trace_sqrt_rel_diff"] = abs(tr_covmean - tr_eigh) / max(abs(tr_eigh), 1e-300)
    return FrechetResult(base - 2.0 * tr_covmean, "sqrtm+eps" if used_eps else "sqrtm", used_eps, None, details)


# ---------------------------------------------------------------------------------------------


class GaussianStats:
    """Float64 sufficient statistics of a set of feature vectors, mergeable exactly.

    ``update(features)`` adds an (N, dim) batch; ``merge(other)`` adds another accumulator;
    ``mean`` / ``cov`` give pytorch-fid's μ and Σ (``np.cov(..., rowvar=False)``).
    ``to_arrays()`` / ``from_arrays()`` convert to/from a dict of float64 arrays (the
    ``ClipResult.stats`` format); the symmetric outer-product sum is stored as its upper
    triangle, which halves the storage (a 2048-d FID accumulator is 16.8 MB instead of 33.6 MB).
    """

    def __init__(self, dim: int):
        if dim < 1:
            raise ValueError(f"feature dimension must be positive, not {dim}")
        self.dim = int(dim)
        self.count = 0
        self.sum = np.zeros(self.dim, dtype=np.float64)
        self.sum_outer = np.zeros((self.dim, self.dim), dtype=np.float64)

    def __repr__(self) -> str:
        return f"GaussianStats(dim={self.dim}, count={self.count})"

    def update(self, features: np.ndarray) -> "GaussianStats":
        x = np.asarray(features, dtype=np.float64)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"features must be (N, {self.dim}), got {tuple(np.shape(features))}")
        if not np.isfinite(x).all():
            raise ValueError("features contain NaN or infinity")
        self.count += x.shape[0]
        self.sum += x.sum(axis=0)
        self.sum_outer += x.T @ x
        return self

    def merge(self, other: "GaussianStats") -> "GaussianStats":
        if other.dim != self.dim:
            raise ValueError(f"cannot merge {other.dim}-d statistics into {self.dim}-d ones")
        self.count += other.count
        self.sum += other.sum
        self.sum_outer += other.sum_outer
        return self

    @classmethod
    def merged(cls, parts: Iterable["GaussianStats"]) -> "GaussianStats":
        parts = list(parts)
        if not parts:
            raise ValueError("no statistics to merge")
        out = cls(parts[0].dim)
        for p in parts:
            out.merge(p)
        return out

    @property
    def mean(self) -> np.ndarray:
        if self.count < 1:
            raise ValueError("no samples")
        return self.sum / self.count

    @property
    def cov(self) -> np.ndarray:
        if self.count < 2:
            raise ValueError(f"{self.count} sample(s): a covariance needs at least 2")
        mu = self.mean
        c = (self.sum_outer - self.count * np.outer(mu, mu)) / (self.count - 1)
        return (c + c.T) / 2.0  # exact symmetry (the sums are symmetric up to rounding)

    def to_arrays(self) -> dict[str, np.ndarray]:
        iu = np.triu_indices(self.dim)
        return {"count": np.array(self.count, dtype=np.float64), "sum": self.sum.copy(),
                "sum_outer_triu": self.sum_outer[iu].copy()}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "GaussianStats":
        try:
            s = np.asarray(arrays["sum"], dtype=np.float64)
            count = float(np.asarray(arrays["count"]))
        except KeyError as exc:
            raise ValueError(f"statistics lack the array {exc.args[0]!r}") from None
        out = cls(s.shape[0])
        if count != int(count) or count < 0:
            raise ValueError(f"statistics count {count} is not a non-negative integer")
        out.count = int(count)
        out.sum = s.copy()
        if "sum_outer_triu" in arrays:
            packed = np.asarray(arrays["sum_outer_triu"], dtype=np.float64)
            iu = np.triu_indices(out.dim)
            if packed.shape != (iu[0].size,):
                raise ValueError(f"sum_outer_triu has shape {packed.shape}, expected ({iu[0].size},)")
            m = np.zeros((out.dim, out.dim))
            m[iu] = packed
            out.sum_outer = m + np.triu(m, 1).T
        elif "sum_outer" in arrays:
            out.sum_outer = np.asarray(arrays["sum_outer"], dtype=np.float64).copy()
        else:
            raise ValueError("statistics lack 'sum_outer_triu' (or 'sum_outer')")
        return out

    # -- files -----------------------------------------------------------------------------

    def save(self, path: str | os.PathLike, extra: dict[str, np.ndarray] | None = None, **meta: str) -> Path:
        """Write an ``.npz`` with the statistics, ``mu``/``sigma`` (pytorch-fid's ``--save-stats``
        keys, so the file also works with ``python -m pytorch_fid``) and string metadata
        (extractor, weights sha256, frame policy…). Written to a temp file, then renamed.
        ``extra``: further arrays stored under their own names (e.g. the per-sample
        ``features`` KID/KVD need)."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, Any] = dict(self.to_arrays())
        for k, v in (extra or {}).items():
            if k in arrays or k in ("mu", "sigma") or k.startswith("meta_"):
                raise ValueError(f"extra array name {k!r} is reserved")
            arrays[k] = np.asarray(v)
        if self.count >= 2:
            arrays["mu"] = self.mean
            arrays["sigma"] = self.cov
        for k, v in meta.items():
            arrays[f"meta_{k}"] = np.array(str(v))
        tmp = p.with_name(p.name + ".tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, p)
        return p

    @classmethod
    def load(cls, path: str | os.PathLike) -> tuple["GaussianStats", dict[str, str]]:
        """Read a file written by ``save``; returns (statistics, metadata)."""
        p = Path(path)
        try:
            with np.load(p, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError) as exc:
            raise ValueError(f"{p}: not a readable statistics file ({exc})") from None
        try:
            stats = cls.from_arrays(arrays)
        except ValueError as exc:
            hint = " (a pytorch-fid --save-stats file has only mu/sigma; use load_mu_sigma)" if "mu" in arrays else ""
            raise ValueError(f"{p}: {exc}{hint}") from None
        meta = {k[5:]: str(arrays[k]) for k in arrays if k.startswith("meta_")}
        return stats, meta


def load_mu_sigma(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``mu``/``sigma`` of an ``.npz`` (ie-bench's own files or pytorch-fid's ``--save-stats``)."""
    p = Path(path)
    with np.load(p, allow_pickle=False) as z:
        if "mu" not in z.files or "sigma" not in z.files:
            raise ValueError(f"{p}: no 'mu'/'sigma' arrays (found {', '.join(z.files)})")
        return np.asarray(z["mu"], np.float64), np.asarray(z["sigma"], np.float64)


def frechet_to_reference(metric: str, gen: "GaussianStats", mu_r: np.ndarray, sigma_r: np.ndarray,
                         n_ref: int | None, dims: int, details: dict) -> tuple[float | None, dict]:
    """The set-level step FID and FVD share: sample-size checks (warned and recorded), then the
    Fréchet distance of the generated statistics to the reference. Returns (value, details);
    value is None with a reason when fewer than 2 generated samples exist."""
    import warnings

    problems = {}
    for label, n in (("generated", gen.count), ("reference", n_ref)):
        msg = sample_size_problem(n, dims) if n is not None else None
        if msg:
            problems[label] = msg
            warnings.warn(f"{metric}: {label} set: {msg}", SampleSizeWarning, stacklevel=3)
    if gen.count < 2:
        return None, {**details, "reason": problems.get("generated")}
    if problems:
        details["sample_size_warning"] = problems
    res = frechet_distance(gen.mean, gen.cov, mu_r, sigma_r)
    details["frechet"] = res.to_dict()
    return float(res.value), details
