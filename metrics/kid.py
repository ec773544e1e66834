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

import numpy as np

from interactive_eyes.metrics.base import ClipResult
from interactive_eyes.metrics.fid import FID
from interactive_eyes.metrics.kernel_distance import (  # noqa: F401  (re-exported)
    KernelDistance,
    features_of,
    kernel_reduce,
    load_kernel_reference,
)
from interactive_eyes.stats import kernel as K


class KID(KernelDistance, FID):
    name = "kid"
    version = "1"
    higher_is_better = False
    description = ("Kernel Inception Distance (unbiased MMD², cubic kernel, torch-fidelity's subsets) of all "
                   "frames vs a reference set, on FID's Inception features")
    family = "fid"
    features_note = "float32 per frame"

    def __init__(self, dims: int = 2048, frame_stride: int = 1, batch_size: int = 50, subsets: int = K.SUBSETS,
                 subset_size: int = K.SUBSET_SIZE, seed: int = K.SEED, device: str = "cpu",
                 weights_path: str | None = None, offline: bool | None = None):
        super().__init__(dims=dims, frame_stride=frame_stride, batch_size=batch_size, device=device,
                         weights_path=weights_path, offline=offline)
        self._init_kernel(subsets, subset_size, seed)

    @property
    def feature_dims(self) -> int:
        return self.dims

    def reduce_details(self, stats: list) -> dict:
        return {"n_clips": sum(s is not None for s in stats), "dims": self.dims, "frame_stride": self.frame_stride}

    def finish(self, state: dict) -> ClipResult:
        self._flush(state)
        if not state["features"]:
            return ClipResult.failed(self.name, "no frames decoded")
        feats = np.concatenate(state["features"]).astype(np.float32, copy=False)
        return ClipResult(metric=self.name, value=None, stats={"features": feats},
                          details={"n_frames": int(feats.shape[0]), "n_decoded": state["seen"]})
