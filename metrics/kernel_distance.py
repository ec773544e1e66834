"""What KID and KVD share: per-clip float32 features, the kernel distance to a reference, its files.

``KernelDistance`` is a mixin placed before the Fréchet metric whose features it reads (``KID(
KernelDistance, FID)``, ``KVD(KernelDistance, FVD)``): it adds the subset options, buffers each
clip's feature rows, and replaces the set-level step and the reference loading; network,
preprocessing and cache keys stay the Fréchet metric's. See ``kid.py`` and ``kvd.py`` for the
estimator (``interactive_eyes.stats.kernel``) and the storage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from interactive_eyes.metrics.base import SetResult
from interactive_eyes.stats import kernel as K


def features_of(stats: list[dict[str, np.ndarray]], dims: int, metric: str) -> np.ndarray:
    """The clips' feature rows concatenated in the given (manifest) order."""
    parts = []
    for s in stats:
        if s is None:
            continue
        if "features" not in s:
            raise ValueError(f"{metric}: a clip's statistics hold no 'features' (recorded by another metric version)")
        f = np.asarray(s["features"])
        if f.ndim != 2 or f.shape[1] != dims:
            raise ValueError(f"{metric}: a clip's features are {f.shape}, expected (N, {dims})")
        parts.append(f)
    return np.concatenate(parts) if parts else np.zeros((0, dims), np.float32)


def kernel_reduce(metric: str, gen: np.ndarray, reference: dict[str, np.ndarray] | None, dims: int, *,
                  subsets: int, subset_size: int, seed: int, details: dict[str, Any]) -> SetResult:
    """The set-level step KID and KVD share: counts, warning, kernel distance to the reference."""
    import warnings

    if reference is None:
        raise ValueError(f"{metric}: a reference set is required (--reference DIR|stats.npz, or the ground-truth videos)")
    if "features" not in reference:
        raise ValueError(f"{metric}: the reference holds no per-sample features (recompute it with `ie-bench stats`)")
    ref = np.asarray(reference["features"])
    if ref.ndim != 2 or ref.shape[1] != dims:
        raise ValueError(f"{metric}: reference features are {ref.shape}, this run is {dims}-d")
    details = {**details, "n_generated": int(gen.shape[0]), "n_reference": int(ref.shape[0])}
    if gen.shape[0] < 2 or ref.shape[0] < 2:
        return SetResult(value=None, n_samples=int(gen.shape[0]),
                         details={**details, "reason": "a kernel distance needs at least 2 samples in each set"})
    res = K.kernel_distance(gen, ref, subsets=subsets, subset_size=subset_size, seed=seed)
    if res.warning:
        warnings.warn(f"{metric}: {res.warning}", K.KernelSampleSizeWarning, stacklevel=3)
        details["sample_size_warning"] = res.warning
    details.update({f"{metric}_std": res.std, **res.to_dict(), "min_samples": K.MIN_SAMPLES})
    return SetResult(value=res.mean, n_samples=int(gen.shape[0]), details=details)


def load_kernel_reference(metric, source: str | Path, family: str, progress: bool) -> dict[str, np.ndarray]:
    """KID/KVD reference features: from a statistics file (provenance checked, features required)
    or computed from a folder with the metric's own protocol."""
    from interactive_eyes.stats.reference import (STATS_EXTENSION, ReferenceError, load_reference,
                                                  no_features_reason)

    src = Path(source)
    if src.suffix.lower() == STATS_EXTENSION:
        arrays, _meta = load_reference(src, metric.reference_meta(), features=True)
        if "features" not in arrays:
            raise ReferenceError(src, no_features_reason(metric.name, family))
        return {"features": arrays["features"]}
    return {"features": metric.compute_reference_set(src, progress, features=True).features}


class KernelDistance:
    """Mixin: the kernel-distance counterpart of the Fréchet metric that follows it in the bases."""

    family: str  # the Fréchet metric whose features and reference files are shared ("fid", "fvd")
    features_note: str  # what one feature row is, recorded in params()

    def _init_kernel(self, subsets: int, subset_size: int, seed: int) -> None:
        if int(subsets) < 1 or int(subset_size) < 2:
            raise ValueError(f"{self.name}: need subsets >= 1 and subset_size >= 2, got {subsets} and {subset_size}")
        self.subsets, self.subset_size, self.seed = int(subsets), int(subset_size), int(seed)

    @property
    def feature_dims(self) -> int:
        raise NotImplementedError

    def reduce_details(self, stats: list) -> dict[str, Any]:
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        # subsets/subset_size/seed act only in the set-level step: they are recorded in the
        # result's details, not here, so changing them reuses the stored per-clip features
        return {**super().params(), "features": self.features_note}

    def reference_meta(self) -> dict[str, str]:
        # a reference .npz is the Fréchet metric's statistics file (same extractor and protocol) with features
        return {**super().reference_meta(), "metric": self.family}

    def start(self, ctx) -> dict:
        state = super().start(ctx)
        state["features"] = []
        return state

    def reduce(self, stats: list[dict[str, np.ndarray]], reference: dict[str, np.ndarray] | None = None) -> SetResult:
        gen = features_of(stats, self.feature_dims, self.name)
        if gen.shape[0] == 0:
            return SetResult(value=None, n_samples=0, details={"reason": "no clip features"})
        return kernel_reduce(self.name, gen, reference, self.feature_dims, subsets=self.subsets,
                             subset_size=self.subset_size, seed=self.seed, details=self.reduce_details(stats))

    def load_reference(self, source: str | Path, progress: bool = True) -> dict[str, np.ndarray]:
        """``{"features": (N, dims)}`` from the Fréchet metric's ``.npz`` with features, or computed from media."""
        return load_kernel_reference(self, source, self.family, progress)
