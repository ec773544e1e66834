"""S3FD face detection and IoU tracking as the syncnet_python pipeline runs them (spec §1.2 steps 3, 5).

Only used by the lip-sync metric's ``detector="s3fd"`` option, which reproduces the reference
pre-processing for single-person clips: S3FD on every 25 fps frame at 0.25 scale, score > 0.9,
NMS at IoU 0.1; greedy IoU tracking (IoU > 0.5, gaps of up to 25 frames); tracks with more than
``min_track`` detections and a mean face size above ``min_face_size`` kept; missing frames linearly
interpolated. Scene detection (PySceneDetect) is not run: a clip is one shot.

Network: SSD on VGG16 with L2-normalised taps on conv3_3 / conv4_3 / conv5_3, two extra stages,
six multibox heads (anchor sizes 16..512 px at strides 4..128, one square anchor per cell) and
"max-out background" on the first head (three background logits, their max kept). Module names
are the state-dict keys of ``sfd_face.pth`` (``vgg.N``, ``L2Norm3_3.weight``, ``extras.N``,
``loc.N``, ``conf.N``), loaded strictly; weights through the registry (``resolve('s3fd')``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from interactive_eyes.metrics.syncnet import _one_line

# Pipeline constants (spec §1.2)
FACEDET_SCALE = 0.25  # frames are resized by 0.25 (cv2 INTER_LINEAR) before detection
CONF_TH = 0.9  # detections kept above this face score
NMS_TH = 0.1  # final NMS over the kept detections
TRACK_IOU = 0.5  # a detection joins a track when IoU with its last box is > 0.5
NUM_FAILED_DET = 25  # ... and the frame gap is <= 25
MIN_TRACK = 50  # tracks need more than min_track detections (50: LatentSync / MoCha; original 100)
MIN_FACE_SIZE = 100  # mean of max(box w, box h) over the track must exceed 100 px

# Network / decoding constants of S3FD (Zhang et al. 2017), as the released model uses them.
MEAN_RGB = (123.0, 117.0, 104.0)  # ImageNet means, subtracted from RGB input (no scaling)
STEPS = (4, 8, 16, 32, 64, 128)
ANCHOR_SIZES = (16, 32, 64, 128, 256, 512)
VARIANCES = (0.1, 0.2)
PRE_NMS_SCORE = 0.05  # candidates above this score enter the per-image NMS
PRE_NMS_TOP_K = 5000
PER_IMAGE_NMS = 0.3
KEEP_TOP_K = 750

# VGG16 trunk ('M' = max-pool 2x2, 'C' = max-pool 2x2 ceil_mode, then fc6 (dilated) and fc7 as convs)
_VGG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "C", 512, 512, 512, "M", 512, 512, 512, "M"]
_HEAD_CHANNELS = (256, 512, 512, 1024, 512, 256)


class L2Norm(nn.Module):
    """Channel-wise L2 normalisation with a learned per-channel scale (``weight``)."""

    def __init__(self, channels: int, scale: float):
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), float(scale)))
        self.eps = 1e-10

    def forward(self, x):
        norm = x.pow(2).sum(dim=1, keepdim=True).sqrt() + self.eps
        return x / norm * self.weight[None, :, None, None]


def _vgg_layers() -> tuple[nn.ModuleList, tuple[int, int, int]]:
    layers: list[nn.Module] = []
    c_in = 3
    for v in _VGG:
        if v in ("M", "C"):
            layers.append(nn.MaxPool2d(2, 2, ceil_mode=v == "C"))
        else:
            layers += [nn.Conv2d(c_in, v, 3, padding=1), nn.ReLU(inplace=True)]
            c_in = v
    layers += [
        nn.Conv2d(512, 1024, 3, padding=6, dilation=6),  # fc6
        nn.ReLU(inplace=True),
        nn.Conv2d(1024, 1024, 1),  # fc7
        nn.ReLU(inplace=True),
    ]
    # indices (in this list) of the ReLUs after conv3_3, conv4_3, conv5_3: taps for the heads
    relus = [i for i, m in enumerate(layers) if isinstance(m, nn.ReLU)]
    return nn.ModuleList(layers), (relus[6], relus[9], relus[12])


class S3FDNet(nn.Module):
    """The S3FD network; ``forward`` returns raw head outputs (loc N x P x 4, face-vs-background
    logits N x P x 2) and ``detect`` the decoded, NMS-filtered boxes."""

    def __init__(self):
        super().__init__()
        self.vgg, self._taps = _vgg_layers()
        self.L2Norm3_3 = L2Norm(256, 10)
        self.L2Norm4_3 = L2Norm(512, 8)
        self.L2Norm5_3 = L2Norm(512, 5)
        self.extras = nn.ModuleList(
            [nn.Conv2d(1024, 256, 1), nn.Conv2d(256, 512, 3, 2, padding=1), nn.Conv2d(512, 128, 1), nn.Conv2d(128, 256, 3, 2, padding=1)]
        )
        self.loc = nn.ModuleList([nn.Conv2d(c, 4, 3, padding=1) for c in _HEAD_CHANNELS])
        # first head: 3 background logits (max-out) + 1 face logit
        self.conf = nn.ModuleList([nn.Conv2d(c, 4 if k == 0 else 2, 3, padding=1) for k, c in enumerate(_HEAD_CHANNELS)])

    def _sources(self, x: torch.Tensor) -> list[torch.Tensor]:
        norms = (self.L2Norm3_3, self.L2Norm4_3, self.L2Norm5_3)
        sources = []
        for i, layer in enumerate(self.vgg):
            x = layer(x)
            if i in self._taps:
                sources.append(norms[self._taps.index(i)](x))
        sources.append(x)  # fc7
        for k, layer in enumerate(self.extras):
            x = torch.relu(layer(x))
            if k % 2 == 1:
                sources.append(x)
        return sources

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, int]]]:
        locs, confs, shapes = [], [], []
        for k, src in enumerate(self._sources(x)):
            loc = self.loc[k](src)
            conf = self.conf[k](src)
            if k == 0:
                conf = torch.cat([conf[:, :3].amax(dim=1, keepdim=True), conf[:, 3:]], dim=1)
            shapes.append((src.shape[2], src.shape[3]))
            locs.append(loc.permute(0, 2, 3, 1).reshape(x.shape[0], -1, 4))
            confs.append(conf.permute(0, 2, 3, 1).reshape(x.shape[0], -1, 2))
        return torch.cat(locs, 1), torch.cat(confs, 1), shapes


def anchors(image_hw: tuple[int, int], shapes: list[tuple[int, int]]) -> torch.Tensor:
    """(P, 4) anchors cx, cy, w, h relative to the image: one square anchor of side
    ``ANCHOR_SIZES[k]`` px per cell of head k, centred on the cell ((j + 0.5) * stride)."""
    h, w = image_hw
    out = []
    for (fh, fw), step, size in zip(shapes, STEPS, ANCHOR_SIZES):
        ys, xs = torch.meshgrid(torch.arange(fh, dtype=torch.float64), torch.arange(fw, dtype=torch.float64), indexing="ij")
        cx = ((xs + 0.5) * step / w).reshape(-1)
        cy = ((ys + 0.5) * step / h).reshape(-1)
        out.append(torch.stack([cx, cy, torch.full_like(cx, size / w), torch.full_like(cy, size / h)], 1))
    return torch.cat(out).float()


def decode(loc: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
    """SSD box decoding with variances (0.1, 0.2): (P, 4) relative x1, y1, x2, y2."""
    centre = priors[:, :2] + loc[:, :2] * VARIANCES[0] * priors[:, 2:]
    size = priors[:, 2:] * torch.exp(loc[:, 2:] * VARIANCES[1])
    return torch.cat([centre - size / 2, centre + size / 2], 1)


class S3FD:
    """S3FD detector: ``detect(rgb)`` -> (K, 5) boxes x1, y1, x2, y2, score in frame pixels."""

    def __init__(self, net: S3FDNet, device: str | torch.device = "cpu"):
        self.net = net.eval().to(device)
        self.device = device

    @torch.inference_mode()
    def detect(self, rgb: np.ndarray, conf_th: float = CONF_TH, scale: float = FACEDET_SCALE, nms_th: float = NMS_TH) -> np.ndarray:
        import cv2
        from torchvision.ops import nms

        h, w = rgb.shape[:2]
        img = cv2.resize(rgb, dsize=(0, 0), fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR) if scale != 1 else rgb
        x = torch.from_numpy(np.ascontiguousarray(img)).to(self.device).permute(2, 0, 1).float()
        x = (x - torch.tensor(MEAN_RGB, device=x.device)[:, None, None])[None]
        loc, logits, shapes = self.net(x)
        priors = anchors(tuple(x.shape[2:]), shapes).to(loc.device)
        scores = torch.softmax(logits[0], dim=-1)[:, 1]
        boxes = decode(loc[0], priors)
        keep = torch.nonzero(scores > PRE_NMS_SCORE).squeeze(1)
        keep = keep[torch.argsort(scores[keep], descending=True)[:PRE_NMS_TOP_K]]
        keep = keep[nms(boxes[keep], scores[keep], PER_IMAGE_NMS)][:KEEP_TOP_K]
        keep = keep[scores[keep] > conf_th]
        out = torch.cat([boxes[keep] * torch.tensor([w, h, w, h], device=boxes.device, dtype=boxes.dtype), scores[keep, None]], 1)
        out = out.double().cpu()
        if out.shape[0] > 1:
            out = out[nms(out[:, :4], out[:, 4], nms_th)]
        return out.numpy()


def load_s3fd(path: str | os.PathLike | None = None, *, device: str | torch.device = "cpu", offline: bool | None = None) -> tuple[S3FD, Path]:
    """The S3FD detector (strict load of ``sfd_face.pth``; registry ``s3fd`` when no path)."""
    if path is None:
        from interactive_eyes.weights import resolve

        path = resolve("s3fd", offline=offline)
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise RuntimeError(f"{path}: S3FD weights file not found") from None
    except Exception as exc:
        raise RuntimeError(f"{path}: not a loadable torch file ({exc.__class__.__name__}: {_one_line(exc)})") from None
    net = S3FDNet()
    try:
        net.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError) as exc:
        raise RuntimeError(f"{path}: not an S3FD state dict ({_one_line(exc)})") from None
    return S3FD(net, device), path


# --------------------------------------------------------------------------- tracking (spec §1.2 step 5)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / (union + 1e-8)


@dataclass
class Track:
    id: int
    frames: list[int] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)

    @property
    def last_frame(self) -> int:
        return self.frames[-1]


class IouTracker:
    """The reference's greedy tracking, run online.

    The reference builds one track per pass over the whole shot: at each frame it looks at the
    first detection that earlier passes left (detections are in score order) and takes it when
    the gap to the track's last detection is <= 25 frames and IoU with its last box is > 0.5;
    otherwise it skips that frame. A pass starts its track at the first leftover detection.
    Running the passes side by side, oldest track first, gives the same tracks frame by frame:
    ``update`` returns ``(track_id, box)`` assignments; a track can be closed once the current
    frame is more than 25 frames past its last detection (``expired``).
    """

    def __init__(self, iou_threshold: float = TRACK_IOU, max_gap: int = NUM_FAILED_DET):
        self.iou_threshold = iou_threshold
        self.max_gap = max_gap
        self.tracks: list[Track] = []
        self._next_id = 0

    def update(self, frame: int, detections: np.ndarray) -> list[tuple[int, np.ndarray]]:
        left = [np.asarray(d[:4], dtype=np.float64) for d in detections]
        out = []
        for t in self.tracks:
            if not left:
                break
            if frame - t.last_frame <= self.max_gap and iou(left[0], t.boxes[-1]) > self.iou_threshold:
                d = left.pop(0)
                t.frames.append(frame)
                t.boxes.append(d)
                out.append((t.id, d))
        for d in left:  # each leftover starts a track (a later pass in the reference)
            t = Track(self._next_id, [frame], [d])
            self._next_id += 1
            self.tracks.append(t)
            out.append((t.id, d))
        return out

    def expired(self, frame: int) -> list[Track]:
        """Tracks that can no longer grow at ``frame`` (removed from the active list)."""
        dead = [t for t in self.tracks if frame - t.last_frame > self.max_gap]
        self.tracks = [t for t in self.tracks if frame - t.last_frame <= self.max_gap]
        return dead


def interpolate_track(frames: list[int], boxes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """All frames from the first to the last detection, boxes linearly interpolated in between."""
    f = np.asarray(frames)
    b = np.asarray(boxes, dtype=np.float64)
    full = np.arange(f[0], f[-1] + 1)
    return full, np.stack([np.interp(full, f, b[:, k]) for k in range(4)], 1)
