"""Output size and frame count of the AnyTalker pipeline (§9.1, §9.2 of ``shared/spec/anytalker-model.md``).

Both rules are reproduced with the official float arithmetic, quirks included: the "832*480"
budget gives 832x448 for 16:9 images and even for an exact 480x832 image, because
sqrt(399360 * 480 / 832) evaluates to 479.99999999999994 and is floored to 464 before the
snapping to multiples of 32 takes 16 more off.
"""

from __future__ import annotations

import math

FPS = 24  # audio features, frame counting and (here, unlike the official default 16) writing (§3.2)
VAE_STRIDE_SPATIAL = 8  # Wan VAE (4, 8, 8) strides (§3.2)
VAE_STRIDE_TEMPORAL = 4
PATCH = 2  # DiT spatial patch (1, 2, 2)
SNAP = 32  # the second step of §9.1 snaps both sides to multiples of 32
# The released 1.3B sizes (§3.2): "W*H" area budgets. Other "W*H" strings are accepted as plain
# area budgets (tests use tiny ones); the sampling shift follows the size (scheduler.py).
OFFICIAL_SIZES_1_3B = ("832*480", "480*832", "512*512")


def parse_size(size: str) -> int:
    """The area budget of a ``"W*H"`` size string (§3.2: it is a maximum area, not a shape)."""
    parts = str(size).replace("x", "*").split("*")
    try:
        w, h = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"size {size!r} is not 'W*H' (e.g. '832*480')") from None
    if w < 1 or h < 1:
        raise ValueError(f"size {size!r}: both sides must be >= 1")
    return w * h


def output_size(image_h: int, image_w: int, area: int) -> tuple[int, int]:
    """(h, w) of the generated video for an ``image_h`` x ``image_w`` image and an area budget (§9.1).

    Step 1: aspect ratio r = h/w; latent sides floor(floor(sqrt(A r) / 8) / 2) * 2 (and sqrt(A / r)
    for the width), in Python float arithmetic, times 8. Step 2: two candidates snapped to multiples
    of 32 (width first / height first, each side at least 32); the one closer in L1 wins, ties to
    the width-first candidate.
    """
    if image_h < 1 or image_w < 1:
        raise ValueError(f"image size {image_w}x{image_h} is empty")
    r = image_h / image_w
    lat_h = round(math.sqrt(area * r) // VAE_STRIDE_SPATIAL // PATCH * PATCH)
    lat_w = round(math.sqrt(area / r) // VAE_STRIDE_SPATIAL // PATCH * PATCH)
    h0, w0 = VAE_STRIDE_SPATIAL * lat_h, VAE_STRIDE_SPATIAL * lat_w
    if h0 < 1 or w0 < 1:
        raise ValueError(f"area budget {area} is too small for a {image_w}x{image_h} image")
    r0 = h0 / w0
    w1 = max(SNAP, w0 // SNAP * SNAP)
    h1 = max(SNAP, int(w1 * r0) // SNAP * SNAP)
    h2 = max(SNAP, h0 // SNAP * SNAP)
    w2 = max(SNAP, int(h2 / r0) // SNAP * SNAP)
    if abs(w1 - w0) + abs(h1 - h0) <= abs(w2 - w0) + abs(h2 - h0):
        return h1, w1
    return h2, w2


def frame_count(duration: float, fps: int = FPS) -> int:
    """F = ((ceil(duration * fps) - 1) // 4) * 4 + 1 (§9.2): the largest 4n+1 <= ceil(24 T), at least 1."""
    n = math.ceil(duration * fps)
    return max(1, ((n - 1) // VAE_STRIDE_TEMPORAL) * VAE_STRIDE_TEMPORAL + 1)


def latent_frames(num_frames: int) -> int:
    """f = (F - 1) / 4 + 1 for a 4n+1 frame count."""
    if num_frames < 1 or (num_frames - 1) % VAE_STRIDE_TEMPORAL:
        raise ValueError(f"frame count {num_frames} is not 4n+1")
    return (num_frames - 1) // VAE_STRIDE_TEMPORAL + 1


def latent_size(h: int, w: int) -> tuple[int, int]:
    return h // VAE_STRIDE_SPATIAL, w // VAE_STRIDE_SPATIAL
