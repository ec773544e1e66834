"""KID: Kernel Inception Distance between the frames of all generated clips and a reference set.

Same features as FID (``metrics/fid.py``: pytorch-fid's Inception-v3, pool3 2048-d, its
preprocessing, ``frame_stride``), a different distance: the unbiased MMD² with the cubic
polynomial kernel, mean and std over random subsets, exactly as torch-fidelity defines it
(``interactive_eyes.stats.kernel``: 100 subsets, subset size 1000 clipped to the smaller set,
``RandomState(2020)``). Unlike FID's 2048-d covariance, the estimator is unbiased at any sample
count, which is why it suits small sets (29 InteractiveEyes clips, 20-video HDTF/VFHQ).

Per-clip storage: the estimator needs every sample, not sums, so each clip's ``stats`` is its
``features`` array, **float32** (N × dims): the exact values the network produced (it runs in
float32), so stored, resumed and sharded runs concatenate to bit-identical inputs; float16 would
halve the files (4 KB instead of 8 KB a 2048-d frame) but round every feature to ~3 significant
digits (relative 5e-4) before the cubic kernel. A 10 s clip at 25 fps is 250 × 2048 × 4 B = 2 MB (FID's per-clip sums
are 16.8 MB whatever the length). The set-level step concatenates the clips in manifest order, so
the subsets, and the value, do not depend on the order clips were scored in.

Reference: a folder (features computed with this run's protocol) or an ``ie-bench stats`` FID
``.npz`` that carries ``features`` (the default of ``ie-bench stats``; the same file serves FID).
A file without features is refused with a one-line reason.

``value`` is the KID mean (lower is better; slightly negative values are valid: the estimator is
unbiased around 0); ``details`` hold ``kid_std``, the counts, the subset size actually used and a
``sample_size_warning`` below ``stats.kernel.MIN_SAMPLES`` (100) samples in either set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from interactive_eyes.metrics.base import ClipResult, SetResult
from interactive_eyes.metrics.fid import FID
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


class KID(FID):
    name = "kid"
    version = "1"
    higher_is_better = False
    description = ("Kernel Inception Distance (unbiased MMD², cubic kernel, torch-fidelity's subsets) of all "
                   "frames vs a reference set, on FID's Inception features")

    def __init__(self, dims: int = 2048, frame_stride: int = 1, batch_size: int = 50, subsets: int = K.SUBSETS,
                 subset_size: int = K.SUBSET_SIZE, seed: int = K.SEED, device: str = "cpu",
                 weights_path: str | None = None, offline: bool | None = None):
        super().__init__(dims=dims, frame_stride=frame_stride, batch_size=batch_size, device=device,
                         weights_path=weights_path, offline=offline)
        if int(subsets) < 1 or int(subset_size) < 2:
            raise ValueError(f"kid: need subsets >= 1 and subset_size >= 2, got {subsets} and {subset_size}")
        self.subsets, self.subset_size, self.seed = int(subsets), int(subset_size), int(seed)

    def params(self) -> dict[str, Any]:
        # subsets/subset_size/seed act only in the set-level step: they are recorded in the
        # result's details, not here, so changing them reuses the stored per-clip features
        return {**super().params(), "features": "float32 per frame"}

    def reference_meta(self) -> dict[str, str]:
        # a reference .npz is an FID statistics file (same extractor and protocol) with features
        return {**super().reference_meta(), "metric": "fid"}

    def start(self, ctx) -> dict:
        state = super().start(ctx)
        state["features"] = []
        return state

    def finish(self, state: dict) -> ClipResult:
        self._flush(state)
        if not state["features"]:
            return ClipResult.failed(self.name, "no frames decoded")
        feats = np.concatenate(state["features"]).astype(np.float32, copy=False)
        return ClipResult(metric=self.name, value=None, stats={"features": feats},
                          details={"n_frames": int(feats.shape[0]), "n_decoded": state["seen"]})

    def reduce(self, stats: list[dict[str, np.ndarray]], reference: dict[str, np.ndarray] | None = None) -> SetResult:
        gen = features_of(stats, self.dims, self.name)
        if gen.shape[0] == 0:
            return SetResult(value=None, n_samples=0, details={"reason": "no clip features"})
        return kernel_reduce(self.name, gen, reference, self.dims, subsets=self.subsets,
                             subset_size=self.subset_size, seed=self.seed,
                             details={"n_clips": sum(s is not None for s in stats), "dims": self.dims,
                                      "frame_stride": self.frame_stride})

    def load_reference(self, source: str | Path, progress: bool = True) -> dict[str, np.ndarray]:
        """``{"features": (N, dims)}`` from an FID ``.npz`` with features, or computed from media."""
        return load_kernel_reference(self, source, "fid", progress)


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
