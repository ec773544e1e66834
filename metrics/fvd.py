"""FVD: Fréchet Video Distance between 16-frame clips of all generated videos and a reference set.

Protocol (spec/metrics.md §3.2 and §3.4, the StyleGAN-V I3D the field uses):

* detector: StyleGAN-V's ``i3d_torchscript.pt`` (TorchScript port of the tf.hub Kinetics-400
  I3D), registry entry ``i3d_torchscript`` (SHA-256 checked), called with its documented
  signature ``detector(x, rescale=True, resize=True, return_features=True)`` where ``x`` is a
  float tensor **B×3×T×H×W in the uint8 range [0, 255]**; the module itself rescales to
  [−1, 1] and resizes every frame to 224×224, and returns the **400-d** pre-softmax logits;
* clips: **16 consecutive frames, non-overlapping**, starting at the first frame
  (frames 0–15, 16–31, …); a tail shorter than 16 frames is dropped and counted; a video
  shorter than 16 frames contributes no clip (StyleGAN-V discards such videos) and is reported
  as skipped. ``max_clips_per_video`` caps the count per video (default: no cap). The number of
  clips is recorded: FVD falls as N grows, so values are only comparable at equal N (§3.4);
* frames: **full frames, squashed by the detector** — no centre crop. A centre crop (JunyaoHu's
  ``styleganv`` variant) would cut the people off the sides of 832×480 two-person frames (§3.4);
* statistics and distance: float64 ``GaussianStats`` per clip (mergeable across shards and
  resumed runs), then the same ``frechet_distance`` as FID.

Clip length is in frames, not seconds: at 24 fps a clip spans 0.667 s, at 25 fps 0.64 s; mixing
frame rates between the generated and reference sets changes the motion statistics.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from interactive_eyes.metrics import batching
from interactive_eyes.metrics.base import ClipContext, ClipResult, FrameData, Metric, RegistryWeights, SetResult
from interactive_eyes.metrics.feature_memo import cached_network, shared_features
from interactive_eyes.stats.frechet import GaussianStats, frechet_to_reference

log = logging.getLogger(__name__)

EXTRACTOR = "stylegan-v-i3d-torchscript"
WEIGHTS_NAME = "i3d_torchscript"
FEATURE_DIM = 400  # Kinetics-400 logits (§3.2)
CLIP_LEN = 16  # customary FVD clip length (§3.1, §3.2); the exported I3D refuses < ~10 frames
DETECTOR_KWARGS = {"rescale": True, "resize": True, "return_features": True}  # §3.2, §3.4 "recommended default"


def load_detector(path: str | Path, device: str = "cpu"):
    """The TorchScript I3D, on ``device``, in eval mode."""
    import torch

    with warnings.catch_warnings():
        # torch >= 2.10 marks torch.jit as deprecated; the published detector *is* TorchScript
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(str(path), map_location=device).eval()


def clips_to_tensor(clips: list[np.ndarray]):
    """uint8 clips T×H×W×3 → float B×3×T×H×W with values 0…255 (the detector's input, §3.2)."""
    import torch

    batch = torch.from_numpy(np.stack(clips))  # B, T, H, W, C
    return batch.permute(0, 4, 1, 2, 3).float()


class FVD(RegistryWeights, Metric):
    weights_name = WEIGHTS_NAME
    name = "fvd"
    version = "1"
    higher_is_better = False
    needs = frozenset({"frames", "reference"})
    set_level = True
    description = "Fréchet Video Distance (StyleGAN-V I3D, 400-d) of non-overlapping 16-frame clips vs a reference set"

    def __init__(self, clip_len: int = CLIP_LEN, max_clips_per_video: int | None = None, batch_size: int = 2,
                 device: str = "cpu", weights_path: str | None = None, offline: bool | None = None):
        if clip_len < 10:
            raise ValueError(f"fvd: clip_len {clip_len} is too short: the I3D needs at least ~10 frames (§3.2)")
        if max_clips_per_video is not None and max_clips_per_video < 1:
            raise ValueError(f"fvd: max_clips_per_video must be ≥ 1 or None, not {max_clips_per_video}")
        self.clip_len = int(clip_len)
        self.max_clips_per_video = max_clips_per_video
        self.batch_size = max(1, int(batch_size))  # a 16×832×480 clip is ~77 MB as float32
        self.device = device
        self.weights_path = weights_path
        self.offline = offline
        self._detector = None
        self._path: Path | None = None

    # -- provenance ---------------------------------------------------------------------------

    def params(self) -> dict[str, Any]:
        return {"impl": "stylegan-v", "extractor": EXTRACTOR, "clip_len": self.clip_len,
                "clips": "non-overlapping, from the first frame; shorter tail dropped",
                "max_clips_per_video": self.max_clips_per_video,
                "detector_kwargs": dict(DETECTOR_KWARGS),
                "frames": "full frames, uint8 range, resized to 224x224 by the detector, no crop"}

    def reference_meta(self) -> dict[str, str]:
        return {"metric": self.name, "extractor": EXTRACTOR, "dims": str(FEATURE_DIM),
                "clip_len": str(self.clip_len), "weights_sha256": self.weights()[WEIGHTS_NAME]}

    # -- features -----------------------------------------------------------------------------

    @property
    def detector(self):
        if self._detector is None:  # one network per (weights, device) in this process (feature_memo.py)
            path = self._weights_file()
            self._detector = cached_network(("fvd-i3d", str(path), str(self.device)),
                                            lambda: load_detector(path, self.device))
        return self._detector

    def features(self, clips: list[np.ndarray]) -> np.ndarray:
        """(B, 400) I3D features of uint8 clips, each T×H×W×3."""
        import torch

        detector = self.detector
        with torch.no_grad():  # merged with other clips' clips under --clips-in-flight (batching.py)
            out = batching.run(("fvd i3d", id(detector)), lambda x: detector(x, **DETECTOR_KWARGS),
                               clips_to_tensor(clips).to(self.device))
        feats = out.detach().cpu().numpy()
        if feats.ndim != 2 or feats.shape != (len(clips), FEATURE_DIM):
            raise ValueError(f"fvd: detector returned {tuple(feats.shape)}, expected ({len(clips)}, {FEATURE_DIM})")
        return feats

    # -- per clip -----------------------------------------------------------------------------

    def start(self, ctx: ClipContext | None) -> dict:
        return {"stats": GaussianStats(FEATURE_DIM), "frames": [], "clips": [], "n_clips": 0, "seen": 0,
                "capped": False}

    def update(self, state: dict, frame: FrameData) -> None:
        state["seen"] += 1
        if state["capped"]:
            return
        rgb = np.asarray(frame.rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"fvd: frame {frame.index} must be H×W×3 uint8, got {rgb.shape} {rgb.dtype}")
        if state["frames"] and rgb.shape != state["frames"][0].shape:
            raise ValueError(f"fvd: frame {frame.index} is {rgb.shape[:2]}, earlier frames {state['frames'][0].shape[:2]}")
        state["frames"].append(rgb)
        if len(state["frames"]) == self.clip_len:
            state["clips"].append(np.stack(state["frames"]))
            state["frames"] = []
            state["n_clips"] += 1
            if self.max_clips_per_video is not None and state["n_clips"] >= self.max_clips_per_video:
                state["capped"] = True
            if len(state["clips"]) >= self.batch_size:
                self._flush(state)

    def _flush(self, state: dict) -> None:
        if state["clips"]:
            if type(self).features is FVD.features:  # fvd and kvd in one score: one pass per batch (feature_memo.py)
                extractor = ("fvd-i3d", str(self._weights_file()), str(self.device))
                feats = shared_features(extractor, state["clips"], self.features)
            else:  # a subclass with its own features (a stand-in) shares nothing
                feats = self.features(state["clips"])
            state["stats"].update(feats)
            if "features" in state:  # KVD, and reference sets that keep features (float32, see kvd.py)
                state["features"].append(np.asarray(feats, dtype=np.float32))
            state["clips"] = []

    def finish(self, state: dict) -> ClipResult:
        self._flush(state)
        st: GaussianStats = state["stats"]
        dropped = state["seen"] - st.count * self.clip_len
        if st.count == 0:
            return ClipResult.skipped(self.name, f"{state['seen']} frames: fewer than one {self.clip_len}-frame clip")
        return ClipResult(metric=self.name, value=None, stats=st.to_arrays(),
                          details={"n_clips": st.count, "n_frames": state["seen"], "n_frames_unused": dropped})

    # -- set level ----------------------------------------------------------------------------

    def reduce(self, stats: list[dict[str, np.ndarray]], reference: dict[str, np.ndarray] | None = None) -> SetResult:
        from interactive_eyes.stats.reference import reference_arrays_to_stats

        if reference is None:
            raise ValueError("fvd: a reference set is required (--reference DIR|stats.npz, or the ground-truth videos)")
        parts = [GaussianStats.from_arrays(s) for s in stats if s is not None]
        if not parts:
            return SetResult(value=None, n_samples=0, details={"reason": "no clip statistics"})
        gen = GaussianStats.merged(parts)
        mu_r, sigma_r, n_ref = reference_arrays_to_stats(reference)
        if mu_r.shape[0] != FEATURE_DIM:
            raise ValueError(f"fvd: reference statistics are {mu_r.shape[0]}-d, expected {FEATURE_DIM}-d")
        details: dict[str, Any] = {"n_clips_generated": gen.count, "n_clips_reference": n_ref,
                                   "n_videos": len(parts), "clip_len": self.clip_len}
        value, details = frechet_to_reference("fvd", gen, mu_r, sigma_r, n_ref, FEATURE_DIM, details)
        return SetResult(value=value, n_samples=gen.count, details=details)

    # -- reference sets -----------------------------------------------------------------------

    def compute_reference(self, source: str | Path, progress: bool = True) -> GaussianStats:
        """Statistics of the clips of a folder of videos (or one video), with this run's protocol."""
        return self.compute_reference_set(source, progress, features=False).stats

    def compute_reference_set(self, source: str | Path, progress: bool = True, features: bool = True):
        """``ReferenceSet``: the statistics and, with ``features``, every clip's float32 feature
        row (in file order, then clip order) for KVD."""
        from interactive_eyes.stats.reference import ReferenceSet, iter_media_frames, reference_files

        files = reference_files(source, images=False)
        total = GaussianStats(FEATURE_DIM)
        rows: list[np.ndarray] = []
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(files), desc=f"{self.name} reference", unit="video", leave=False)
        n_short = 0
        for path in files:
            state = self.start(None)
            if features:
                state["features"] = []
            for index, time, rgb in iter_media_frames(path):
                self.update(state, FrameData(index=index, time=time, rgb=rgb))
                if state["capped"]:
                    break
            self._flush(state)
            n_short += state["stats"].count == 0
            total.merge(state["stats"])
            rows.extend(state.get("features", []))
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        if n_short:
            log.warning("%s reference %s: %d of %d videos shorter than %d frames were skipped",
                        self.name, source, n_short, len(files), self.clip_len)
        feats = (np.concatenate(rows) if rows else np.zeros((0, FEATURE_DIM), np.float32)) if features else None
        return ReferenceSet(total, feats)

    def load_reference(self, source: str | Path, progress: bool = True) -> dict[str, np.ndarray]:
        from interactive_eyes.stats.reference import STATS_EXTENSION, load_reference

        src = Path(source)
        if src.suffix.lower() == STATS_EXTENSION:
            arrays, _meta = load_reference(src, self.reference_meta())
            return arrays
        return self.compute_reference(src, progress).to_arrays()
