"""KVD: Kernel Video Distance between 16-frame clips of all generated videos and a reference set.

Same features as FVD (``metrics/fvd.py``: StyleGAN-V's I3D, 400-d, non-overlapping 16-frame
clips from the first frame, ``max_clips_per_video``), the distance of KID
(``interactive_eyes.stats.kernel``: unbiased MMD², cubic kernel ``(x·y/400 + 1)^3``, 100 subsets of
size min(1000, n_generated, n_reference), ``RandomState(2020)``) — the kernel counterpart of FVD
that the FVD paper (Unterthiner et al., 2018) proposes beside it.

Per-clip storage: each video's ``stats`` is its ``features`` array, float32 (n_clips × 400):
1.6 KB per 16-frame clip (FVD's sums are 0.6 MB per video), exactly the detector's float32 output,
so resumed and sharded runs concatenate (in manifest order) to the one-pass input.

Reference: a folder of videos, or an ``ie-bench stats --metric fvd`` ``.npz`` with ``features``.
Results carry ``kvd_std``, the clip counts and a warning below 100 clips in either set — a
29-video benchmark of ~8 s videos at 25 fps has ~380 clips; three short videos have far fewer.
"""

from __future__ import annotations

import numpy as np

from interactive_eyes.metrics.base import ClipResult
from interactive_eyes.metrics.fvd import FEATURE_DIM, FVD
from interactive_eyes.metrics.kernel_distance import KernelDistance
from interactive_eyes.stats import kernel as K


class KVD(KernelDistance, FVD):
    name = "kvd"
    version = "1"
    higher_is_better = False
    description = ("Kernel Video Distance (unbiased MMD², cubic kernel, torch-fidelity's subsets) of 16-frame "
                   "clips vs a reference set, on FVD's I3D features")
    family = "fvd"
    features_note = "float32 per 16-frame clip"
    feature_dims = FEATURE_DIM

    def __init__(self, clip_len: int = 16, max_clips_per_video: int | None = None, batch_size: int = 2,
                 subsets: int = K.SUBSETS, subset_size: int = K.SUBSET_SIZE, seed: int = K.SEED,
                 device: str = "cpu", weights_path: str | None = None, offline: bool | None = None):
        super().__init__(clip_len=clip_len, max_clips_per_video=max_clips_per_video, batch_size=batch_size,
                         device=device, weights_path=weights_path, offline=offline)
        self._init_kernel(subsets, subset_size, seed)

    def reduce_details(self, stats: list) -> dict:
        return {"n_videos": sum(s is not None for s in stats), "clip_len": self.clip_len}

    def finish(self, state: dict) -> ClipResult:
        self._flush(state)
        if not state["features"]:
            return ClipResult.skipped(self.name, f"{state['seen']} frames: fewer than one {self.clip_len}-frame clip")
        feats = np.concatenate(state["features"]).astype(np.float32, copy=False)
        n = int(feats.shape[0])
        return ClipResult(metric=self.name, value=None, stats={"features": feats},
                          details={"n_clips": n, "n_frames": state["seen"],
                                   "n_frames_unused": state["seen"] - n * self.clip_len})
