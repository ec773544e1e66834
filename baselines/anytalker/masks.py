"""Face selection, square boxes, face masks and token masks (§8 of ``shared/spec/anytalker-model.md``).

Pure arithmetic on detector boxes: the detector itself (InsightFace SCRFD) is not part of this
module. Box arithmetic runs in float32 because the detector returns float32 boxes and the
official code computes on them directly (the golden boxes carry float32 rounding, e.g.
18.14999962 for 18.15).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

# §8.3: each face mask is enlarged about its centre by 1.2 in width and 1.1 in height
MASK_EXPAND_WIDTH = 1.2
MASK_EXPAND_HEIGHT = 1.1
# §8.4: video frames per latent frame (Wan VAE temporal stride), 4 mask channels of y
VAE_TEMPORAL_STRIDE = 4


def select_faces(boxes_xyxy: np.ndarray | None, num_faces: int, image_hw: tuple[int, int]) -> np.ndarray:
    """§8.1: keep the ``num_faces`` largest detector boxes (raw area, descending) and order them
    left to right (by x1), so that audio track i binds to the i-th kept face. With no box: one
    centred square fallback of side floor(min(W, H) / 2). Returns float32 [k, 4] (x1, y1, x2, y2)."""
    h_img, w_img = image_hw
    if boxes_xyxy is None or len(boxes_xyxy) == 0:
        side = min(w_img, h_img) // 2
        x1, y1 = (w_img - side) // 2, (h_img - side) // 2
        return np.array([[x1, y1, x1 + side, y1 + side]], dtype=np.float32)
    boxes = np.asarray(boxes_xyxy, dtype=np.float32).reshape(-1, 4)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = boxes[np.argsort(-area, kind="stable")[:num_faces]]
    return keep[np.argsort(keep[:, 0], kind="stable")]


def square_box(box_xyxy: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
    """§8.2: square of side max(w, h) centred on the box, shifted inside the image (left/top edge
    first, then right/bottom), clamped. Returns float32 (x, y, w, h)."""
    h_img, w_img = image_hw
    x1, y1, x2, y2 = (np.float32(v) for v in box_xyxy)
    side = max(x2 - x1, y2 - y1)
    half = side / np.float32(2)

    def axis(lo, hi, border):
        c = (lo + hi) / np.float32(2)
        a, b = c - half, c + half
        if a < 0:
            a, b = np.float32(0), side
        if b > border:
            a, b = np.float32(border) - side, np.float32(border)
        a = min(max(a, np.float32(0)), np.float32(border))
        b = min(max(b, np.float32(0)), np.float32(border))
        return a, b

    xa, xb = axis(x1, x2, w_img)
    ya, yb = axis(y1, y2, h_img)
    return np.array([xa, ya, xb - xa, yb - ya], dtype=np.float32)


def detector_mask(box_xywh: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
    """§8.2: uint8 [H, W], ones on rows int(y1)..int(y2)-1 and columns int(x1)..int(x2)-1."""
    x, y, w, h = (float(v) for v in box_xywh)
    mask = np.zeros(image_hw, dtype=np.uint8)
    mask[int(y): int(y + h), int(x): int(x + w)] = 1
    return mask


def _resize(img: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize with half-pixel centres and no antialiasing (§8.3) of a [H, W] map."""
    return F.interpolate(img[None, None].float(), size=size, mode="bilinear", align_corners=False,
                         antialias=False)[0, 0]


def expand_mask(mask: np.ndarray | torch.Tensor, width_factor: float = MASK_EXPAND_WIDTH,
                height_factor: float = MASK_EXPAND_HEIGHT) -> torch.Tensor:
    """§8.3: enlarge the region of pixels > 0.5 about its centre; the content of its bounding box
    is bilinearly resized into the enlarged inclusive box of an all-zero mask. float32 [H, W]."""
    m = torch.as_tensor(np.asarray(mask), dtype=torch.float32)
    out = torch.zeros_like(m)
    ys, xs = torch.nonzero(m > 0.5, as_tuple=True)
    if len(ys) == 0:
        return out

    def bounds(lo: int, hi: int, factor: float, dim: int) -> tuple[int, int]:
        centre, size = (lo + hi) / 2, hi - lo + 1
        new = int(size * factor)
        return max(int(centre - new / 2), 0), min(int(centre + new / 2), dim - 1)

    y0, y1 = int(ys.min()), int(ys.max())
    x0, x1 = int(xs.min()), int(xs.max())
    ny0, ny1 = bounds(y0, y1, height_factor, m.shape[0])
    nx0, nx1 = bounds(x0, x1, width_factor, m.shape[1])
    out[ny0: ny1 + 1, nx0: nx1 + 1] = _resize(m[y0: y1 + 1, x0: x1 + 1], (ny1 - ny0 + 1, nx1 - nx0 + 1))
    return out


def token_mask(expanded: torch.Tensor, latent_hw: tuple[int, int]) -> torch.Tensor:
    """§8.3: the expanded full-resolution mask bilinearly resized straight to the token grid
    (latent / 2, the DiT's spatial patch size). Soft values at the edges."""
    return _resize(expanded, (latent_hw[0] // 2, latent_hw[1] // 2))


def y_mask_channels(global_mask: torch.Tensor, latent_hw: tuple[int, int], num_frames: int) -> torch.Tensor:
    """§8.4: the 4 mask channels of y, [4, f, H, W]: latent frame 0 all ones, every later latent
    frame the global face mask resized (bilinear, half-pixel) to the latent size."""
    if (num_frames - 1) % VAE_TEMPORAL_STRIDE:
        raise ValueError(f"frame count {num_frames} is not 4n+1")
    lat_h, lat_w = latent_hw
    later = _resize(global_mask, (lat_h, lat_w))
    frames = torch.cat([torch.ones(VAE_TEMPORAL_STRIDE, lat_h, lat_w),  # frame 0, repeated to 4
                        later.expand(num_frames - 1, lat_h, lat_w)])
    f = frames.shape[0] // VAE_TEMPORAL_STRIDE
    return frames.view(f, VAE_TEMPORAL_STRIDE, lat_h, lat_w).transpose(0, 1).contiguous()


def crop_box(box_xywh: np.ndarray, image_hw: tuple[int, int]) -> tuple[int, int, int, int]:
    """§8.5: integer (x1, y1, x2, y2) = (x, y, x+w, y+h) clamped to the image, truncated."""
    h_img, w_img = image_hw
    x, y, w, h = (float(v) for v in box_xywh)
    x1, y1 = min(max(x, 0.0), w_img), min(max(y, 0.0), h_img)
    x2, y2 = min(max(x + w, 0.0), w_img), min(max(y + h, 0.0), h_img)
    return int(x1), int(y1), int(x2), int(y2)


@dataclass
class FaceMasks:
    """Everything §8 derives from the detector boxes, for n identities."""

    bboxes_xywh: np.ndarray  # [n, 4] float32, square boxes
    det_masks: np.ndarray  # [n, H, W] uint8
    expanded_masks: torch.Tensor  # [n, H, W] float32
    global_mask: torch.Tensor  # [H, W] float32, sum (not clipped)
    token_masks: torch.Tensor  # [n, lat_h/2, lat_w/2]
    face_mask_list: torch.Tensor  # [n, f, lat_h/2, lat_w/2]: the DiT's face masks
    y_mask: torch.Tensor  # [4, f, lat_h, lat_w]: the mask channels of y
    crop_boxes_xyxy: np.ndarray  # [n, 4] int64, CLIP face crops

    def dit_face_masks(self) -> list[torch.Tensor]:
        """Per identity [1, 1, f, h, w], the form the DiT takes (§5.1)."""
        return [m[None, None] for m in self.face_mask_list]


def build_face_masks(boxes_xyxy: np.ndarray | None, num_faces: int, image_hw: tuple[int, int],
                     latent_hw: tuple[int, int], num_frames: int) -> FaceMasks:
    """§8.1-8.5 for ``num_faces`` audio tracks on an image of ``image_hw`` (H, W), latent size
    ``latent_hw`` and ``num_frames`` video frames (4n+1)."""
    kept = select_faces(boxes_xyxy, num_faces, image_hw)
    squares = np.stack([square_box(b, image_hw) for b in kept])
    det = np.stack([detector_mask(b, image_hw) for b in squares])
    expanded = torch.stack([expand_mask(d) for d in det])
    tokens = torch.stack([token_mask(e, latent_hw) for e in expanded])
    f = (num_frames - 1) // VAE_TEMPORAL_STRIDE + 1
    global_mask = expanded.sum(0)
    return FaceMasks(
        bboxes_xywh=squares,
        det_masks=det,
        expanded_masks=expanded,
        global_mask=global_mask,
        token_masks=tokens,
        face_mask_list=tokens[:, None].expand(-1, f, -1, -1).contiguous(),
        y_mask=y_mask_channels(global_mask, latent_hw, num_frames),
        crop_boxes_xyxy=np.array([crop_box(b, image_hw) for b in squares], dtype=np.int64),
    )
