"""The ``face-alignment`` landmark backend: 2D-FAN-4 (68 iBUG points) on the tracker's face boxes.

The ``face-alignment`` package itself cannot be installed next to MediaPipe (it requires
``opencv-python``, which clashes with the ``opencv-contrib-python`` MediaPipe brings), so ie-bench
carries the network here and loads the package's released weights file directly:

* weights: registry entry ``fan_2dfan4`` = ``2DFAN4-11f355bf06.pth.tar``, the plain state dict
  face-alignment v1.5.0 loads (spec/metrics.md §6.2), fetched and checked by
  ``interactive_eyes.weights.resolve`` (offline: a one-line error naming the URL and the path);
* network: FAN (Bulat & Tzimiropoulos, "How far are we from solving the 2D & 3D face alignment
  problem?", ICCV 2017): a stem (7x7/2 conv, three bottleneck blocks, one 2x average pool) and
  4 stacked depth-4 hourglasses on 256 channels, with intermediate supervision between stacks;
  the parameter names follow the released state dict so that it loads strictly; the
  architecture's sizes are read from the state dict (stacks, width, depth, points), which is
  also how tests load a tiny random-initialised network of the same architecture;
* pre/post-processing with face-alignment's documented numbers (spec §6.2): the crop is
  centred on the box centre moved up by 0.12 box heights, its side is 200 * (w + h) / 195
  (195 = the reference scale of face-alignment's default S3FD detector), resampled to 256x256
  RGB in [0, 1]; the heatmaps are 64x64 and each point is the heatmap maximum moved a quarter
  cell towards its larger neighbour.

Differences from running face-alignment itself, all deliberate:

* The boxes are the tracker's (the MediaPipe mesh's extent, forehead to chin), not S3FD's; the
  ``fan_s3fd`` detector is not needed. Passing external boxes is a documented face-alignment
  path (``detected_faces``; spec §6.2 notes it is also the main speed-up). The two box
  conventions differ by some 10% in size and centre, which moves FAN's crop a little, not what
  its points mean.
* Points keep their sub-pixel value; face-alignment rounds them to integer pixels, which would
  add up to 0.5 px of quantisation noise to a displacement metric.
* The crop is one exact affine resampling (bilinear) instead of an integer crop followed by a
  resize, and coordinates use the pixel-centre convention throughout; this only shifts every
  point by the same sub-pixel amount, which displacements cancel.
* No horizontal-flip test-time averaging (face-alignment <= 1.4.1 did none either; 1.5.0 turned
  it on by default).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from interactive_eyes.faces.landmarks import FACE_ALIGNMENT, N_POINTS, LandmarkBackend
from interactive_eyes.faces.types import FaceBox

WEIGHTS_NAME = "fan_2dfan4"

INPUT_SIZE = 256  # FAN input resolution (spec §6.2)
HEATMAP_SIZE = 64  # heatmap resolution
SCALE_FACTOR = 200.0  # crop side = SCALE_FACTOR * scale (face-alignment's convention)
REFERENCE_SCALE = 195.0  # S3FD's reference scale: scale = (w + h) / 195 (spec §6.2)
CENTER_SHIFT = 0.12  # crop centre moved up by 0.12 box heights (spec §6.2)
SUBPIXEL_STEP = 0.25  # quarter-cell step towards the larger neighbour


def _torch():
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    return torch, nn, F


def build_fan(n_stacks: int = 4, width: int = 256, depth: int = 4, n_points: int = 68):
    """FAN with ``n_stacks`` hourglasses of ``width`` channels (2D-FAN-4: 4, 256, 4, 68)."""
    torch, nn, F = _torch()

    class Bottleneck(nn.Module):
        """Pre-activation block whose three 3x3 convs (w/2, w/4, w/4 channels) are concatenated."""

        def __init__(self, cin: int, cout: int):
            super().__init__()
            half, quarter = cout // 2, cout // 4
            self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, half, 3, 1, 1, bias=False)
            self.bn2, self.conv2 = nn.BatchNorm2d(half), nn.Conv2d(half, quarter, 3, 1, 1, bias=False)
            self.bn3, self.conv3 = nn.BatchNorm2d(quarter), nn.Conv2d(quarter, quarter, 3, 1, 1, bias=False)
            self.downsample = (
                nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(True), nn.Conv2d(cin, cout, 1, 1, bias=False))
                if cin != cout else None
            )

        def forward(self, x):
            a = self.conv1(F.relu(self.bn1(x)))
            b = self.conv2(F.relu(self.bn2(a)))
            c = self.conv3(F.relu(self.bn3(b)))
            skip = x if self.downsample is None else self.downsample(x)
            return torch.cat((a, b, c), 1) + skip

    class Hourglass(nn.Module):
        """Recursive hourglass: level L has blocks b1_L (skip), b2_L (down), b3_L (up);
        the innermost level adds b2_plus_1."""

        def __init__(self, levels: int, ch: int):
            super().__init__()
            self.levels = levels
            for lv in range(levels, 0, -1):
                for tag in ("b1", "b2", "b3"):
                    setattr(self, f"{tag}_{lv}", Bottleneck(ch, ch))
            self.b2_plus_1 = Bottleneck(ch, ch)

        def _run(self, lv: int, x):
            skip = getattr(self, f"b1_{lv}")(x)
            low = getattr(self, f"b2_{lv}")(F.avg_pool2d(x, 2, stride=2))
            low = self._run(lv - 1, low) if lv > 1 else self.b2_plus_1(low)
            low = getattr(self, f"b3_{lv}")(low)
            return skip + F.interpolate(low, scale_factor=2, mode="nearest")

        def forward(self, x):
            return self._run(self.levels, x)

    class FAN(nn.Module):
        def __init__(self):
            super().__init__()
            self.n_stacks = n_stacks
            self.conv1 = nn.Conv2d(3, width // 4, 7, 2, 3)
            self.bn1 = nn.BatchNorm2d(width // 4)
            self.conv2 = Bottleneck(width // 4, width // 2)
            self.conv3 = Bottleneck(width // 2, width // 2)
            self.conv4 = Bottleneck(width // 2, width)
            for s in range(n_stacks):
                setattr(self, f"m{s}", Hourglass(depth, width))
                setattr(self, f"top_m_{s}", Bottleneck(width, width))
                setattr(self, f"conv_last{s}", nn.Conv2d(width, width, 1))
                setattr(self, f"bn_end{s}", nn.BatchNorm2d(width))
                setattr(self, f"l{s}", nn.Conv2d(width, n_points, 1))
                if s < n_stacks - 1:  # feed the stack's features and heatmaps to the next one
                    setattr(self, f"bl{s}", nn.Conv2d(width, width, 1))
                    setattr(self, f"al{s}", nn.Conv2d(n_points, width, 1))

        def forward(self, x):
            """(B, 3, 256, 256) RGB in [0, 1] -> the last stack's (B, n_points, 64, 64) heatmaps."""
            x = F.relu(self.bn1(self.conv1(x)))
            x = self.conv4(self.conv3(F.avg_pool2d(self.conv2(x), 2, stride=2)))
            heat = None
            for s in range(self.n_stacks):
                feat = getattr(self, f"top_m_{s}")(getattr(self, f"m{s}")(x))
                feat = F.relu(getattr(self, f"bn_end{s}")(getattr(self, f"conv_last{s}")(feat)))
                heat = getattr(self, f"l{s}")(feat)
                if s < self.n_stacks - 1:
                    x = x + getattr(self, f"bl{s}")(feat) + getattr(self, f"al{s}")(heat)
            return heat

    return FAN()


def fan_shape(state: dict) -> dict:
    """Architecture sizes read from a FAN state dict."""
    stacks = {int(m.group(1)) for k in state if (m := re.match(r"m(\d+)\.", k))}
    levels = {int(m.group(1)) for k in state if (m := re.match(r"m0\.b1_(\d+)\.", k))}
    if not stacks or not levels or "l0.weight" not in state or "conv_last0.weight" not in state:
        raise ValueError("not a FAN state dict (no hourglass 'm0.b1_*' / 'l0' / 'conv_last0' parameters)")
    return {
        "n_stacks": max(stacks) + 1,
        "width": int(state["conv_last0.weight"].shape[0]),
        "depth": max(levels),
        "n_points": int(state["l0.weight"].shape[0]),
    }


def load_fan(path: str | os.PathLike, device: str = "cpu"):
    """Load a FAN weights file (a plain state dict, or one under 'state_dict'), strictly."""
    torch, _, _ = _torch()
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle/zip errors from a wrong or truncated file
        raise ValueError(f"{path}: not a readable torch weights file ({type(exc).__name__}: {exc})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    state = {k.removeprefix("module."): v for k, v in state.items()}
    try:
        shape = fan_shape(state)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    net = build_fan(**shape)
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{path}: FAN state dict does not match the architecture {shape} "
                         f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})")
    return net.eval().to(device)


# ----------------------------------------------------------------------------------- geometry


def crop_transform(box: FaceBox) -> tuple[float, float, float]:
    """(crop left, crop top, crop side) in frame pixels for a face box (face-alignment's rule)."""
    w, h = box.width, box.height
    cx, cy = box.center
    cy -= CENTER_SHIFT * h
    side = SCALE_FACTOR * (w + h) / REFERENCE_SCALE
    return cx - side / 2, cy - side / 2, side


def crop_face(rgb: np.ndarray, box: FaceBox) -> tuple[np.ndarray, tuple[float, float, float]]:
    """The 256x256 crop FAN reads (bilinear; outside the frame is black), and its geometry.

    Continuous coordinates (pixel i covers [i, i+1)): frame X = left + U * side / 256 for crop U.
    """
    import cv2

    left, top, side = crop_transform(box)
    a = side / INPUT_SIZE
    # cv2 indexes pixel centres: frame index x = X - 0.5, crop index u = U - 0.5
    m = np.array([[a, 0.0, left + 0.5 * a - 0.5], [0.0, a, top + 0.5 * a - 0.5]])
    crop = cv2.warpAffine(rgb, m, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return crop, (left, top, side)


def decode_heatmaps(heat: np.ndarray) -> np.ndarray:
    """(P, H, W) heatmaps -> (P, 2) continuous heatmap coordinates (cell i covers [i, i+1)).

    The maximum cell, moved a quarter cell towards the larger of its two neighbours on each axis
    (not at the border), at the cell centre.
    """
    p, h, w = heat.shape
    flat = heat.reshape(p, -1).argmax(axis=1)
    ys, xs = np.divmod(flat, w)
    out = np.stack([xs, ys], axis=1).astype(np.float64) + 0.5
    rows = np.arange(p)
    inner = (xs > 0) & (xs < w - 1) & (ys > 0) & (ys < h - 1)
    xl, xr = np.clip(xs - 1, 0, w - 1), np.clip(xs + 1, 0, w - 1)
    yu, yd = np.clip(ys - 1, 0, h - 1), np.clip(ys + 1, 0, h - 1)
    dx = np.sign(heat[rows, ys, xr] - heat[rows, ys, xl])
    dy = np.sign(heat[rows, yd, xs] - heat[rows, yu, xs])
    out[:, 0] += np.where(inner, SUBPIXEL_STEP * dx, 0.0)
    out[:, 1] += np.where(inner, SUBPIXEL_STEP * dy, 0.0)
    return out


def heatmap_to_frame(points: np.ndarray, geometry: tuple[float, float, float], size: int = HEATMAP_SIZE) -> np.ndarray:
    left, top, side = geometry
    return np.stack([left + points[:, 0] * side / size, top + points[:, 1] * side / size], axis=1)


class FaceAlignmentBackend(LandmarkBackend):
    """2D-FAN-4 on every person's box; all people of a frame in one batch."""

    name = FACE_ALIGNMENT
    n_points = N_POINTS[FACE_ALIGNMENT]

    def __init__(self, device: str = "cpu", *, weights_path: str | os.PathLike | None = None,
                 offline: bool | None = None, network=None, allow_tf32: bool = True):
        """``weights_path``: a FAN state dict to use instead of the registry's (it is then not
        checked against the registry); ``network``: an already built module with FAN's
        input/output contract (tests). ``allow_tf32``: let CUDA convolutions use TF32 (the default;
        recorded in ``describe()``). Measured on an H100 with a random full-size 2D-FAN-4
        (``benchmarks/fan_backend_speed.py``): float32 matches the CPU exactly (heatmaps within
        5e-6, every point identical) but cuDNN's float32 kernels are pathological for some batch
        sizes (6 faces: 300-370 ms per batch against 16 ms with TF32); with TF32 the heatmaps
        differ from the CPU's by ~1e-3 of their peak and 3.7% of the random network's points move
        by a quarter heatmap cell. Pass False for bit-parity with the CPU."""
        torch, _, _ = _torch()
        self.device = device
        self.weights_file = None
        self.weights_sha256 = None
        if network is None:
            if weights_path is None:
                from interactive_eyes.weights import file_sha256, resolve

                weights_path = resolve(WEIGHTS_NAME, offline=offline)
                self.weights_sha256 = file_sha256(weights_path)
            network = load_fan(weights_path, device=device)
            self.weights_file = str(weights_path)
        self.net = network.eval().to(device)
        self.allow_tf32 = bool(allow_tf32)
        self._torch = torch

    def locate(self, rgb: np.ndarray, boxes: Sequence[FaceBox | None], meshes) -> list[np.ndarray | None]:
        torch = self._torch
        todo = [(k, b) for k, b in enumerate(boxes) if b is not None and b.width > 1 and b.height > 1]
        out: list[np.ndarray | None] = [None] * len(boxes)
        if not todo:
            return out
        crops, geoms = zip(*(crop_face(rgb, b) for _, b in todo))
        batch = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float().div_(255.0).to(self.device)
        # TF32 only if allowed (see __init__); cuDNN picks its fastest algorithm per batch size
        # (benchmark=True; the batch size is the number of people, so it is tuned once per run)
        with torch.inference_mode(), torch.backends.cudnn.flags(enabled=True, benchmark=True,
                                                                allow_tf32=self.allow_tf32):
            heat = self.net(batch)
        if isinstance(heat, (list, tuple)):
            heat = heat[-1]
        heat = heat.float().cpu().numpy()
        size = heat.shape[-1]
        for (k, _), h, g in zip(todo, heat, geoms):
            out[k] = heatmap_to_frame(decode_heatmaps(h), g, size)
        return out

    def describe(self) -> dict:
        from interactive_eyes.weights import get_spec

        d = {"backend": self.name, "n_points": self.n_points, "weights": WEIGHTS_NAME, "url": get_spec(WEIGHTS_NAME).url,
             "tf32": self.allow_tf32}
        if self.weights_file:
            d["weights_file"] = self.weights_file
        if self.weights_sha256:
            d["weights_sha256"] = self.weights_sha256
        return d
