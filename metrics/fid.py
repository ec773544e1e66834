"""FID: Fréchet Inception Distance between the frames of all generated clips and a reference set.

Protocol (spec/metrics.md §2.1, §2.3), using pytorch-fid itself:

* network: ``pytorch_fid.inception.InceptionV3`` (the FID Inception — TF inception-2015-12-05
  weights ported to PyTorch, with the FID-specific A/C/E blocks), output block 3 = the final
  average pool, **2048-d** features (``dims`` may be 64/192/768 for tests and diagnostics);
  its weights are the registry's ``pt_inception`` file (SHA-256 checked), loaded through
  pytorch-fid's own construction path;
* preprocessing: exactly pytorch-fid's: RGB uint8 → float /255 (``ToTensor``), then *inside the
  network* a bilinear resize to 299×299 (``align_corners=False``, no antialias, aspect ratio not
  kept) and ``2x − 1``. Frames are not cropped;
* statistics: every sampled frame of every clip is one sample (frames pooled over all clips, the
  standard practice, §2.3); μ and the unbiased Σ come from float64 sums (``GaussianStats``), so
  per-clip statistics merge exactly across shards and resumed runs;
* distance: ``interactive_eyes.stats.frechet.frechet_distance`` (pytorch-fid's formula, eps
  retry, imaginary-part check, with a recorded eigen fallback instead of a crash).

Frame sampling: ``frame_stride=k`` keeps decoded frames 0, k, 2k, … of each clip (1 = all);
it is recorded in ``params()`` and in reference statistics.

Sample size: with fewer samples than feature dimensions (2048) the covariance is rank-deficient
and the value is biased upwards and not comparable across sample counts (§2.3); ``reduce`` warns
(``SampleSizeWarning``) and records the warning in the result.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from interactive_eyes.metrics import batching
from interactive_eyes.metrics.base import ClipContext, ClipResult, FrameData, Metric, RegistryWeights, SetResult
from interactive_eyes.metrics.feature_memo import cached_network, shared_features
from interactive_eyes.stats.frechet import GaussianStats, frechet_to_reference

log = logging.getLogger(__name__)

EXTRACTOR = "pytorch-fid-inception-v3"
WEIGHTS_NAME = "pt_inception"
DIMS = (64, 192, 768, 2048)  # pytorch-fid's InceptionV3.BLOCK_INDEX_BY_DIM
DEFAULT_BATCH = 50  # pytorch-fid's default --batch-size

_build_lock = threading.Lock()


def build_fid_inception(weights_path: str | Path, dims: int = 2048, device: str = "cpu"):
    """pytorch-fid's ``InceptionV3([block(dims)])`` with the weights read from ``weights_path``.

    pytorch-fid builds its FID Inception in ``fid_inception_v3()``, which fetches the weights
    with ``load_state_dict_from_url(FID_WEIGHTS_URL)`` into torch hub's cache. ie-bench keeps the
    construction (so the architecture is pytorch-fid's, not a copy) and hands it the registry's
    verified file instead: for the duration of the constructor, that one loader returns the
    state dict read from ``weights_path`` (and refuses any other URL).
    """
    import pytorch_fid.inception as pfi
    import torch

    if dims not in pfi.InceptionV3.BLOCK_INDEX_BY_DIM:
        raise ValueError(f"FID dims must be one of {sorted(pfi.InceptionV3.BLOCK_INDEX_BY_DIM)}, not {dims}")
    state = torch.load(str(weights_path), map_location="cpu", weights_only=True)

    def from_registry(url, *args, **kwargs):
        if url != pfi.FID_WEIGHTS_URL:
            raise RuntimeError(f"unexpected weights URL {url} requested by pytorch-fid")
        return state

    with _build_lock:
        original = pfi.load_state_dict_from_url
        pfi.load_state_dict_from_url = from_registry
        try:
            model = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[dims]])
        finally:
            pfi.load_state_dict_from_url = original
    return model.eval().to(device)


def frames_to_tensor(frames: list[np.ndarray]):
    """uint8 H×W×3 frames → float B×3×H×W in [0, 1], as torchvision's ``ToTensor`` makes them."""
    import torch

    batch = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2)
    return batch.float().div(255.0)


class FID(RegistryWeights, Metric):
    weights_name = WEIGHTS_NAME
    name = "fid"
    version = "1"
    higher_is_better = False
    needs = frozenset({"frames", "reference"})
    set_level = True
    description = "Fréchet Inception Distance (pytorch-fid Inception-v3, pool3 2048-d) of all frames vs a reference set"

    def __init__(self, dims: int = 2048, frame_stride: int = 1, batch_size: int = DEFAULT_BATCH,
                 device: str = "cpu", weights_path: str | None = None, offline: bool | None = None):
        if dims not in DIMS:
            raise ValueError(f"fid: dims must be one of {DIMS}, not {dims}")
        if frame_stride < 1:
            raise ValueError(f"fid: frame_stride must be ≥ 1, not {frame_stride}")
        self.dims = int(dims)
        self.frame_stride = int(frame_stride)
        self.batch_size = int(batch_size)
        self.device = device
        self.weights_path = weights_path
        self.offline = offline
        self._model = None
        self._path: Path | None = None

    # -- provenance ---------------------------------------------------------------------------

    def params(self) -> dict[str, Any]:
        return {"backend": "pytorch-fid", "extractor": EXTRACTOR, "dims": self.dims,
                "frame_stride": self.frame_stride, "pool": "all sampled frames of all clips",
                "resize": "bilinear 299x299 inside the network, align_corners=False, no antialias, no crop"}

    def reference_meta(self) -> dict[str, str]:
        """What a reference ``.npz`` must record to be comparable with this run."""
        return {"metric": self.name, "extractor": EXTRACTOR, "dims": str(self.dims),
                "weights_sha256": self.weights()[WEIGHTS_NAME]}

    # -- features -----------------------------------------------------------------------------

    @property
    def model(self):
        if self._model is None:  # one network per (weights, dims, device) in this process (feature_memo.py)
            path = self._weights_file()
            self._model = cached_network(("fid-inception", str(path), self.dims, str(self.device)),
                                         lambda: build_fid_inception(path, self.dims, self.device))
        return self._model

    def features(self, frames: list[np.ndarray]) -> np.ndarray:
        """(B, dims) float32 activations of uint8 RGB frames, as pytorch-fid's ``get_activations``."""
        import torch
        import torch.nn.functional as F

        model = self.model
        with torch.no_grad():  # merged with other clips' frames under --clips-in-flight (batching.py)
            pred = batching.run(("fid inception", id(model)), lambda x: model(x)[0],
                                frames_to_tensor(frames).to(self.device))
            if pred.shape[2] != 1 or pred.shape[3] != 1:  # blocks 0-2: global average pool (pytorch-fid)
                pred = F.adaptive_avg_pool2d(pred, output_size=(1, 1))
        return pred.squeeze(3).squeeze(2).cpu().numpy()

    # -- per clip -----------------------------------------------------------------------------

    def start(self, ctx: ClipContext | None) -> dict:
        return {"stats": GaussianStats(self.dims), "pending": [], "shape": None, "seen": 0}

    def update(self, state: dict, frame: FrameData) -> None:
        state["seen"] += 1
        if frame.index % self.frame_stride:
            return
        rgb = np.asarray(frame.rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"fid: frame {frame.index} must be H×W×3 uint8, got {rgb.shape} {rgb.dtype}")
        if state["shape"] is not None and rgb.shape != state["shape"]:
            self._flush(state)  # a batch must have one size (pytorch-fid#81); sizes may differ between batches
        state["shape"] = rgb.shape
        state["pending"].append(rgb)
        if len(state["pending"]) >= self.batch_size:
            self._flush(state)

    def _flush(self, state: dict) -> None:
        if state["pending"]:
            if type(self).features is FID.features:  # fid and kid in one score: one pass per batch (feature_memo.py)
                extractor = ("fid-inception", str(self._weights_file()), self.dims, str(self.device))
                feats = shared_features(extractor, state["pending"], self.features)
            else:  # a subclass with its own features (a stand-in) shares nothing
                feats = self.features(state["pending"])
            state["stats"].update(feats)
            if "features" in state:  # KID, and reference sets that keep features (float32, see kid.py)
                state["features"].append(np.asarray(feats, dtype=np.float32))
            state["pending"] = []

    def finish(self, state: dict) -> ClipResult:
        self._flush(state)
        st: GaussianStats = state["stats"]
        if st.count == 0:
            return ClipResult.failed(self.name, "no frames decoded")
        return ClipResult(metric=self.name, value=None, stats=st.to_arrays(),
                          details={"n_frames": st.count, "n_decoded": state["seen"]})

    # -- set level ----------------------------------------------------------------------------

    def reduce(self, stats: list[dict[str, np.ndarray]], reference: dict[str, np.ndarray] | None = None) -> SetResult:
        from interactive_eyes.stats.reference import reference_arrays_to_stats

        if reference is None:
            raise ValueError("fid: a reference set is required (--reference DIR|stats.npz, or the ground-truth videos)")
        parts = [GaussianStats.from_arrays(s) for s in stats if s is not None]
        if not parts:
            return SetResult(value=None, n_samples=0, details={"reason": "no clip statistics"})
        gen = GaussianStats.merged(parts)
        mu_r, sigma_r, n_ref = reference_arrays_to_stats(reference)
        if mu_r.shape[0] != self.dims:
            raise ValueError(f"fid: reference statistics are {mu_r.shape[0]}-d, this run is {self.dims}-d")
        details: dict[str, Any] = {"n_generated": gen.count, "n_reference": n_ref, "n_clips": len(parts),
                                   "dims": self.dims, "frame_stride": self.frame_stride}
        value, details = frechet_to_reference("fid", gen, mu_r, sigma_r, n_ref, self.dims, details)
        return SetResult(value=value, n_samples=gen.count, details=details)

    # -- reference sets -----------------------------------------------------------------------

    def compute_reference(self, source: str | Path, progress: bool = True) -> GaussianStats:
        """Statistics of a folder of videos and/or images (or one file), with this run's
        extractor and frame policy: every image is one sample; video frames follow
        ``frame_stride``."""
        return self.compute_reference_set(source, progress, features=False).stats

    def compute_reference_set(self, source: str | Path, progress: bool = True, features: bool = True):
        """``ReferenceSet``: the statistics and, with ``features``, every sample's float32 feature
        row (in file order, then frame order) for KID."""
        from interactive_eyes.stats.reference import ReferenceSet, iter_media_frames, reference_files

        files = reference_files(source)
        total = GaussianStats(self.dims)
        rows: list[np.ndarray] = []
        bar = _bar(progress, len(files), f"{self.name} reference")
        for path in files:
            state = self.start(None)
            if features:
                state["features"] = []
            for index, time, rgb in iter_media_frames(path):
                self.update(state, FrameData(index=index, time=time, rgb=rgb))
            self._flush(state)
            total.merge(state["stats"])
            rows.extend(state.get("features", []))
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        feats = (np.concatenate(rows) if rows else np.zeros((0, self.dims), np.float32)) if features else None
        return ReferenceSet(total, feats)

    def load_reference(self, source: str | Path, progress: bool = True) -> dict[str, np.ndarray]:
        """Reference statistics from an ``.npz`` (provenance checked) or computed from media."""
        from interactive_eyes.stats.reference import STATS_EXTENSION, load_reference

        src = Path(source)
        if src.suffix.lower() == STATS_EXTENSION:
            arrays, meta = load_reference(src, self.reference_meta())
            return arrays
        return self.compute_reference(src, progress).to_arrays()


def _bar(enabled: bool, total: int, desc: str):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="file", leave=False)
