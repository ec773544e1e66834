"""SyncNet v2 and the pieces of its scoring recipe, as pure, testable functions.

Everything here follows ``spec/metrics.md`` §1 (the joonson/syncnet_python recipe that Sync-C /
LSE-C and Sync-D / LSE-D are defined by):

- ``SyncNet``: the network behind ``syncnet_v2.model`` with the file's exact state-dict keys
  (§1.1), loaded strictly (``load_syncnet``) through the weights registry or from a given path;
- ``compute_mfcc``: python_speech_features MFCCs of **int16-scale** 16 kHz mono samples (§1.3);
- ``select_frames`` / ``GridState``: frames picked by timestamp onto the 25 fps grid (§1.6), and
  ``smooth_boxes`` / ``crop_face``: the reference crop geometry (§1.2 step 6), in ``syncnet_frames.py``;
- ``embed_video_windows`` / ``embed_audio_windows``: batched 5-frame / 20-MFCC-column windows;
- ``distance_matrix`` / ``score_distances`` / ``framewise_confidence``: the ±15 offset search (§1.4);
- ``evaluate_crops``: the reference ``SyncNetInstance.evaluate`` on arrays (pre-cropped clips).

The network takes colour crops in **BGR** order (as ``cv2.imread`` gives them), unnormalised
0-255, 224x224, five frames per window (§0 item 5). Embeddings are 1024-d and not normalised.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from torch import nn

from interactive_eyes.metrics import batching
from interactive_eyes.metrics.syncnet_frames import (  # noqa: F401  (re-exported: one recipe, two files)
    BOX_MEDFILT,
    CROP_PAD_VALUE,
    CROP_SCALE,
    CROP_SIZE,
    FPS,
    GRID_EPS,
    GridState,
    StreamingSmoother,
    box_params,
    crop_face,
    crop_region,
    grid_slot,
    select_frames,
    smooth_boxes,
)

# --------------------------------------------------------------------------- constants (spec §1)

SAMPLE_RATE = 16000  # §1.3
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640 samples = one 25 fps frame (§1.4 min_length)
MFCC_PER_FRAME = 4  # 100 MFCC frames/s (hop 160) / 25 fps
FRAMES_PER_WINDOW = 5  # one window = 5 video frames = 0.2 s (§1.4)
MFCC_PER_WINDOW = FRAMES_PER_WINDOW * MFCC_PER_FRAME  # 20 MFCC columns = 0.2 s
N_MFCC = 13
VSHIFT = 15  # offsets searched: -15 .. +15 windows, 31 in all (§1.4)
BATCH_SIZE = 20  # the reference batch; eval-mode BatchNorm makes results batch-independent
EMBEDDING_DIM = 1024
FRAMEWISE_MEDFILT = 9  # median filter on the frame-wise confidence (§1.4)
PAIRWISE_EPS = 1e-6  # torch.nn.functional.pairwise_distance default, used by calc_pdist

# spec §1.1 (full digest and size pinned identically by several independent repositories)
SYNCNET_V2_SHA256 = "961e8696f888fce4f3f3a6c3d5b3267cf5b343100b238e79b2659bff2c605442"
SYNCNET_V2_SIZE = 54_573_114


# --------------------------------------------------------------------------- network (spec §1.1)


class SyncNet(nn.Module):
    """SyncNet v2 (``S`` in SyncNetModel.py). Module names and ``nn.Sequential`` indices are the
    state-dict keys of ``syncnet_v2.model`` (e.g. ``netcnnlip.0.weight``, ``netfcaud.3.bias``).
    """

    def __init__(self, embedding_dim: int = EMBEDDING_DIM):
        super().__init__()
        relu = lambda: nn.ReLU(inplace=True)  # noqa: E731 - parameter-free, keeps indices aligned
        # audio: N x 1 x 13 x 20 -> 11x9 (idx 7) -> 5x4 (idx 17) -> 1x1 (idx 18): 512 features
        self.netcnnaud = nn.Sequential(
            nn.Conv2d(1, 64, 3, stride=1, padding=1),  # 0
            nn.BatchNorm2d(64),  # 1
            relu(),  # 2
            nn.MaxPool2d(1, stride=1),  # 3 (a no-op kept for the indices)
            nn.Conv2d(64, 192, 3, stride=1, padding=1),  # 4
            nn.BatchNorm2d(192),  # 5
            relu(),  # 6
            nn.MaxPool2d(3, stride=(1, 2)),  # 7
            nn.Conv2d(192, 384, 3, padding=1),  # 8
            nn.BatchNorm2d(384),  # 9
            relu(),  # 10
            nn.Conv2d(384, 256, 3, padding=1),  # 11
            nn.BatchNorm2d(256),  # 12
            relu(),  # 13
            nn.Conv2d(256, 256, 3, padding=1),  # 14
            nn.BatchNorm2d(256),  # 15
            relu(),  # 16
            nn.MaxPool2d(3, stride=2),  # 17
            nn.Conv2d(256, 512, (5, 4), padding=0),  # 18
            nn.BatchNorm2d(512),  # 19
            relu(),  # 20
        )
        # video: N x 3 x 5 x 224 x 224 -> 109 -> 54 -> 26 -> 13 -> 13 -> 6 -> 1: 512 features
        self.netcnnlip = nn.Sequential(
            nn.Conv3d(3, 96, (5, 7, 7), stride=(1, 2, 2), padding=0),  # 0
            nn.BatchNorm3d(96),  # 1
            relu(),  # 2
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2)),  # 3
            nn.Conv3d(96, 256, (1, 5, 5), stride=(1, 2, 2), padding=(0, 1, 1)),  # 4
            nn.BatchNorm3d(256),  # 5
            relu(),  # 6
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),  # 7
            nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)),  # 8
            nn.BatchNorm3d(256),  # 9
            relu(),  # 10
            nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)),  # 11
            nn.BatchNorm3d(256),  # 12
            relu(),  # 13
            nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)),  # 14
            nn.BatchNorm3d(256),  # 15
            relu(),  # 16
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2)),  # 17
            nn.Conv3d(256, 512, (1, 6, 6), padding=0),  # 18
            nn.BatchNorm3d(512),  # 19
            relu(),  # 20
        )
        self.netfcaud = _fc_head(embedding_dim)
        self.netfclip = _fc_head(embedding_dim)

    def embed_audio(self, mfcc_windows: torch.Tensor) -> torch.Tensor:
        """N x 1 x 13 x 20 MFCC windows -> N x 1024 audio embeddings."""
        return self.netfcaud(self.netcnnaud(mfcc_windows).flatten(1))

    def embed_video(self, frame_windows: torch.Tensor) -> torch.Tensor:
        """N x 3 x 5 x 224 x 224 BGR 0-255 windows -> N x 1024 video embeddings."""
        return self.netfclip(self.netcnnlip(frame_windows).flatten(1))

    def lip_features(self, frame_windows: torch.Tensor) -> torch.Tensor:
        """The 512-d conv output before the FC head (``forward_lipfeat``)."""
        return self.netcnnlip(frame_windows).flatten(1)


def _fc_head(embedding_dim: int) -> nn.Sequential:
    # 0 Linear(512->512), 1 BN1d, 2 ReLU, 3 Linear(512->1024)  (spec §1.1)
    return nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, embedding_dim))


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class SyncNetLoadError(RuntimeError):
    """A weights file that is not a syncnet_v2 state dict; one line naming the file."""


def load_syncnet(
    path: str | os.PathLike | None = None, *, device: str | torch.device = "cpu", offline: bool | None = None
) -> tuple[SyncNet, Path]:
    """SyncNet v2 in eval mode on ``device``, strictly loaded, and the file it came from.

    ``path=None`` resolves ``syncnet_v2`` through the weights registry (cache, download, sha256
    check, offline error); an explicit ``path`` is loaded as given (tests use random-initialised
    networks saved in the same file format). The file is a plain state dict (§1.1); it carries no
    ``num_batches_tracked`` tensors, which BatchNorm fills in itself on loading such an old dict.
    """
    if path is None:
        from interactive_eyes.weights import resolve  # foundation; imported lazily (heavy-free)

        path = resolve("syncnet_v2", offline=offline)
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise SyncNetLoadError(f"{path}: syncnet_v2 weights file not found") from None
    except Exception as exc:  # pickle / zip errors of a corrupt or foreign file
        raise SyncNetLoadError(f"{path}: not a loadable torch file ({exc.__class__.__name__}: {_one_line(exc)})") from None
    if not isinstance(state, dict):
        raise SyncNetLoadError(f"{path}: expected a state dict, got {type(state).__name__}")
    net = SyncNet()
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise SyncNetLoadError(f"{path}: not a syncnet_v2 state dict ({_one_line(exc)})") from None
    return net.eval().to(device), path


def save_state_dict_like_reference(net: SyncNet, path: str | os.PathLike) -> Path:
    """Write ``net`` in the layout of ``syncnet_v2.model``: a plain dict of tensors without
    ``num_batches_tracked`` (and without the ``_metadata`` of newer PyTorch). For tests and tools."""
    state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, path)
    return Path(path)


# --------------------------------------------------------------------------- audio (spec §1.3)


def compute_mfcc(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """13 x T MFCCs of mono **int16-scale** samples: ``python_speech_features.mfcc`` defaults.

    T = 1 + ceil((N - 400) / 160) (25 ms rectangular windows, 10 ms hop; the last frame is zero
    padded). c0 is the log frame energy, so the waveform scale matters: samples in [-1, 1]
    instead of int16 shift c0 by 2 ln(1/32768) = -20.8 (§0 item 4). Float input is therefore
    refused: load audio with ``dtype="int16"`` (``interactive_eyes.media.audio.load_audio``).
    """
    import python_speech_features

    a = np.asarray(samples)
    if a.ndim != 1:
        raise ValueError(f"MFCC needs mono samples (1-D), got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.integer):
        raise TypeError(
            f"MFCC needs int16-scale integer samples, got {a.dtype}: float audio in [-1, 1] shifts c0 by "
            f"-20.8 (spec/metrics.md §1.3); load it with dtype='int16'"
        )
    if a.size and (int(a.min()) < -32768 or int(a.max()) > 32767):
        raise ValueError("MFCC samples exceed the int16 range")
    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"SyncNet audio must be {SAMPLE_RATE} Hz mono, got {sample_rate} Hz")
    if a.size < 400:
        raise ValueError(f"audio too short for one MFCC frame ({a.size} samples < 400)")
    return python_speech_features.mfcc(a, sample_rate).T  # (13, T) float64


# --------------------------------------------------------------------------- embeddings


def n_windows(n_frames: int, n_samples: int) -> int:
    """Windows the reference scores: min(frames, floor(samples / 640)) - 5 (§1.4: ``lastframe``;
    the last usable window is lost, a quirk kept for parity)."""
    return max(0, min(int(n_frames), int(n_samples) // SAMPLES_PER_FRAME) - FRAMES_PER_WINDOW)


def _as_video_batch(frames: np.ndarray, device) -> torch.Tensor:
    """(F, 224, 224, 3) uint8 -> (F-4, 3, 5, 224, 224) float32 windows of consecutive frames,
    built on ``device`` (the frames travel once, not five times)."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).to(device)
    x = x.permute(3, 0, 1, 2).float()  # 3, F, H, W ; uint8 -> float32 is exact, as astype(float).float()
    x = x.unfold(1, FRAMES_PER_WINDOW, 1)  # 3, F-4, H, W, 5
    return x.permute(1, 0, 4, 2, 3).contiguous()


@torch.inference_mode()
def embed_video_windows(
    model: nn.Module,
    frames: np.ndarray,
    starts: Iterable[int] | None = None,
    *,
    device: str | torch.device = "cpu",
    batch_size: int = BATCH_SIZE,
) -> torch.Tensor:
    """Embeddings (N x D, float32, on CPU) of the 5-frame windows starting at ``starts``
    (default: every window) of ``frames`` (T x 224 x 224 x 3 uint8 BGR crops)."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[1:] != (CROP_SIZE, CROP_SIZE, 3) or frames.dtype != np.uint8:
        raise ValueError(f"expected T x {CROP_SIZE} x {CROP_SIZE} x 3 uint8 crops, got {frames.shape} {frames.dtype}")
    idx = np.arange(frames.shape[0] - FRAMES_PER_WINDOW + 1) if starts is None else np.asarray(list(starts), int)
    if idx.size and (idx.min() < 0 or idx.max() + FRAMES_PER_WINDOW > frames.shape[0]):
        raise IndexError("window start outside the frames")
    out = []
    k = 0
    while k < idx.size:
        # a run of windows whose frames are contiguous is sent as one block of frames
        j = k + 1
        while j < idx.size and j - k < batch_size and idx[j] == idx[j - 1] + 1:
            j += 1
        block = frames[idx[k] : idx[j - 1] + FRAMES_PER_WINDOW]
        # merged with other clips' windows under --clips-in-flight (batching.py)
        emb = batching.run(("syncnet video", id(model)), model.embed_video, _as_video_batch(block, device))
        out.append(emb.float().cpu())
        k = j
    if not out:
        return torch.zeros(0, EMBEDDING_DIM)
    return torch.cat(out)


@torch.inference_mode()
def embed_audio_windows(
    model: nn.Module,
    mfcc: np.ndarray,
    starts: Iterable[int] | None = None,
    *,
    device: str | torch.device = "cpu",
    batch_size: int = BATCH_SIZE,
) -> torch.Tensor:
    """Embeddings of the audio windows i (MFCC columns 4i .. 4i+20) for i in ``starts``."""
    m = torch.from_numpy(np.asarray(mfcc, dtype=np.float64)).float()
    n_max = (m.shape[1] - MFCC_PER_WINDOW) // MFCC_PER_FRAME + 1
    idx = np.arange(max(n_max, 0)) if starts is None else np.asarray(list(starts), int)
    if idx.size and (idx.min() < 0 or idx.max() >= n_max):
        raise IndexError("audio window outside the MFCCs")
    out = []
    for k in range(0, idx.size, batch_size):
        cols = torch.as_tensor(idx[k : k + batch_size])[:, None] * MFCC_PER_FRAME + torch.arange(MFCC_PER_WINDOW)
        win = m[:, cols].permute(1, 0, 2).unsqueeze(1)  # N x 1 x 13 x 20
        out.append(batching.run(("syncnet audio", id(model)), model.embed_audio, win.to(device)).float().cpu())
    if not out:
        return torch.zeros(0, EMBEDDING_DIM)
    return torch.cat(out)


# --------------------------------------------------------------------------- offset search (spec §1.4)


def distance_matrix(
    video: torch.Tensor, audio: torch.Tensor, rows: Sequence[int] | None = None, vshift: int = VSHIFT
) -> torch.Tensor:
    """(R, 2*vshift+1) Euclidean distances between video window i and audio windows i-15 .. i+15.

    ``video`` and ``audio`` are the N window embeddings of one track (row i of each = window i);
    audio windows outside 0..N-1 are **zero vectors** (the reference pads with zeros, which
    inflates the far offsets, more so for short tracks). ``rows``: the windows to compute
    (default all); only the audio windows within ``vshift`` of them are read. Distances follow
    ``pairwise_distance`` (p=2, eps=1e-6 added to the difference).
    """
    n = video.shape[0]
    if audio.shape[0] != n:
        raise ValueError(f"video ({n}) and audio ({audio.shape[0]}) windows differ in number")
    r = torch.arange(n) if rows is None else torch.as_tensor(list(rows), dtype=torch.long)
    if r.numel() == 0:
        return torch.zeros(0, 2 * vshift + 1)
    padded = torch.nn.functional.pad(audio.float(), (0, 0, vshift, vshift))
    idx = r[:, None] + torch.arange(2 * vshift + 1)[None, :]  # padded index of audio i-15+k
    diff = video.float()[r][:, None, :] - padded[idx]
    return torch.linalg.vector_norm(diff + PAIRWISE_EPS, ord=2, dim=-1)


@dataclass
class SyncScore:
    """The offset search result: AV offset (frames, positive = audio leads), confidence
    (Sync-C / LSE-C = median - min of the mean distances), min distance (Sync-D / LSE-D)."""

    offset: int
    confidence: float
    min_dist: float
    mean_dists: np.ndarray = field(repr=False)  # (31,) mean distance per offset
    n_windows: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "sync_c": self.confidence,
            "sync_d": self.min_dist,
            "av_offset": self.offset,
            "n_windows": self.n_windows,
        }


def score_mean_dists(mdist: torch.Tensor, n_rows: int, vshift: int = VSHIFT) -> SyncScore:
    mdist = torch.as_tensor(mdist, dtype=torch.float32)
    minval, minidx = torch.min(mdist, 0)
    conf = torch.median(mdist) - minval  # 31 values: the median is the middle one
    return SyncScore(
        offset=int(vshift - int(minidx)),
        confidence=float(conf),
        min_dist=float(minval),
        mean_dists=mdist.numpy().copy(),
        n_windows=int(n_rows),
    )


def score_distances(dists: torch.Tensor, vshift: int = VSHIFT) -> SyncScore:
    """Offset, confidence and min distance from a (rows x 31) distance matrix: the mean over
    rows per offset (``mdist``), min over offsets (Sync-D), median - min (Sync-C)."""
    if dists.shape[0] == 0:
        raise ValueError("no windows to score")
    return score_mean_dists(torch.mean(dists.float(), 0), dists.shape[0], vshift)


def framewise_confidence(dists: torch.Tensor, score: SyncScore | None = None) -> np.ndarray:
    """Per-window confidence median(mdist) - dist[i][argmin], median-filtered with kernel 9
    (§1.4; not part of LSE-C). ``score``: the offset search to take median/argmin from
    (default: that of ``dists`` itself)."""
    from scipy.signal import medfilt

    score = score or score_distances(dists)
    mdist = torch.as_tensor(score.mean_dists)
    minidx = int(torch.argmin(mdist))
    fconf = torch.median(mdist).numpy() - dists[:, minidx].float().numpy()
    return medfilt(fconf, kernel_size=FRAMEWISE_MEDFILT)


# --------------------------------------------------------------------------- a pre-cropped clip


@dataclass
class CropEvaluation:
    score: SyncScore
    dists: torch.Tensor  # (N, 31)
    framewise: np.ndarray  # (N,)


def evaluate_crops(
    model: nn.Module,
    crops: np.ndarray,
    audio: np.ndarray,
    *,
    device: str | torch.device = "cpu",
    batch_size: int = BATCH_SIZE,
    vshift: int = VSHIFT,
) -> CropEvaluation:
    """``SyncNetInstance.evaluate`` on arrays: ``crops`` T x 224 x 224 x 3 uint8 **BGR** at
    25 fps, ``audio`` int16 16 kHz mono starting with the first frame."""
    n = n_windows(len(crops), len(audio))
    if n < 1:
        raise ValueError(
            f"clip too short to score: {len(crops)} frames / {len(audio)} samples give no 5-frame window "
            f"(need at least {FRAMES_PER_WINDOW + 1} frames at {FPS} fps)"
        )
    v = embed_video_windows(model, crops[: n + FRAMES_PER_WINDOW - 1], device=device, batch_size=batch_size)
    a = embed_audio_windows(model, compute_mfcc(audio), range(n), device=device, batch_size=batch_size)
    d = distance_matrix(v, a, vshift=vshift)
    s = score_distances(d, vshift)
    return CropEvaluation(score=s, dists=d, framewise=framewise_confidence(d, s))
