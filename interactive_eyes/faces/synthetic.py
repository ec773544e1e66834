"""Synthetic face videos with known motion: a real face photo moved by known affine transforms.

Used by tests (ground truth for the tracker and the face metrics), benchmarks and docs. The face
is a real photograph (by default scikit-image's ``astronaut``, Eileen Collins, public domain),
so detectors and landmark models see a real face; every frame is that photo warped by a known
similarity transform, so where any photo point lands in any frame is known exactly
(``Shot.apply``), and with it the true displacement of any keypoint.

    photo = astronaut()
    shot = Shot(photo, face_center=ASTRONAUT_FACE_CENTER, zoom=2.0, size=(640, 480))
    poses = [Pose(tx=2.5 * k) for k in range(40)]          # 2.5 px/frame to the right
    frames = [shot.render(p) for p in poses]
    true_xy = shot.apply(poses[k], photo_points)            # photo pixels -> frame pixels
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Centre of the astronaut's face in the 512x512 photo (centre of MediaPipe's 478-point mesh box,
# measured once: x 179-271, y 71-177) and its size (the box's longer side, px).
ASTRONAUT_FACE_CENTER = (225.0, 124.0)
ASTRONAUT_FACE_SIDE = 106.0


def astronaut() -> np.ndarray:
    """scikit-image's ``astronaut`` photo (512x512 RGB uint8); needs scikit-image (test extra)."""
    try:
        from skimage import data
    except ImportError as exc:  # pragma: no cover
        raise ImportError(f"the default synthetic face is scikit-image's astronaut photo: pip install scikit-image ({exc})") from None
    return np.ascontiguousarray(data.astronaut())


@dataclass(frozen=True)
class Pose:
    """A face pose relative to its placement: translation (frame px) and rotation (degrees,
    counter-clockwise on screen) about the face centre."""

    tx: float = 0.0
    ty: float = 0.0
    angle: float = 0.0


@dataclass
class Shot:
    """Places ``photo`` so that ``face_center`` (photo px), enlarged by ``zoom``, sits at
    ``place`` (frame px; default: the frame centre) in a frame of ``size`` = (width, height)."""

    photo: np.ndarray
    face_center: tuple[float, float] = ASTRONAUT_FACE_CENTER
    zoom: float = 2.0
    size: tuple[int, int] = (640, 480)
    place: tuple[float, float] | None = None

    def matrix(self, pose: Pose = Pose()) -> np.ndarray:
        """The 2x3 affine taking photo pixels (continuous coordinates) to frame pixels."""
        px, py = self.place if self.place is not None else (self.size[0] / 2.0, self.size[1] / 2.0)
        a = np.deg2rad(pose.angle)
        # screen y points down, so a counter-clockwise rotation on screen is R(-a) in (x, y)
        rot = self.zoom * np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
        fc = np.asarray(self.face_center, dtype=np.float64)
        t = np.array([px + pose.tx, py + pose.ty]) - rot @ fc
        return np.hstack([rot, t[:, None]])

    def apply(self, pose: Pose, points: np.ndarray) -> np.ndarray:
        """Photo points (P, 2) -> where they are in the frame rendered with ``pose``."""
        m = self.matrix(pose)
        p = np.asarray(points, dtype=np.float64)
        return p @ m[:, :2].T + m[:, 2]

    def to_photo(self, pose: Pose, points: np.ndarray) -> np.ndarray:
        """Frame points -> photo points (the inverse of ``apply``)."""
        m = self.matrix(pose)
        p = np.asarray(points, dtype=np.float64) - m[:, 2]
        return p @ np.linalg.inv(m[:, :2]).T

    def render(self, pose: Pose = Pose()) -> np.ndarray:
        """The frame (H, W, 3 uint8): the photo warped by the pose (bicubic; outside the photo is
        its mirrored border, so no hard edge moves with the face)."""
        import cv2

        m = self.matrix(pose)
        # cv2 maps pixel centres (index i at i); continuous coordinates put them at i + 0.5
        shift = np.eye(3)
        shift[:2, 2] = 0.5
        m_idx = (np.linalg.inv(shift) @ np.vstack([m, [0, 0, 1]]) @ shift)[:2]
        w, h = self.size
        return cv2.warpAffine(self.photo, m_idx, (int(w), int(h)), flags=cv2.INTER_CUBIC,
                              borderMode=cv2.BORDER_REFLECT_101)


def true_displacement(shot: Shot, poses: list[Pose], photo_points: np.ndarray) -> np.ndarray:
    """(T,) mean displacement of ``photo_points`` between consecutive poses (NaN at k = 0), in
    frame pixels: the ground truth for a displacement metric."""
    pos = np.stack([shot.apply(p, photo_points) for p in poses])
    out = np.full(len(poses), np.nan)
    out[1:] = np.mean(np.linalg.norm(pos[1:] - pos[:-1], axis=2), axis=1)
    return out


def head_mask(shot: Shot, pose: Pose, radius: float) -> np.ndarray:
    """(H, W) float weights in [0, 1]: a feathered disc of ``radius`` frame px around where the
    face centre is under ``pose`` (1 inside, falling to 0 over the last 20%)."""
    w, h = shot.size
    cx, cy = shot.apply(pose, np.asarray([shot.face_center]))[0]
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    r = np.hypot(xx - cx, yy - cy) / radius
    return np.clip((1.0 - r) / 0.2, 0.0, 1.0)


def render_head_motion(shot: Shot, camera: Pose, head: Pose, radius: float) -> np.ndarray:
    """A frame in which the head (a feathered disc of ``radius`` px around the face) moves by
    ``head`` relative to the scene and the whole scene by ``camera`` (translations add; keep
    rotations in one of the two). Where any photo point of the head lands is
    ``shot.apply(Pose(camera.tx + head.tx, camera.ty + head.ty, camera.angle + head.angle), p)``."""
    moved = Pose(camera.tx + head.tx, camera.ty + head.ty, camera.angle + head.angle)
    bg = shot.render(camera).astype(np.float32)
    fg = shot.render(moved).astype(np.float32)
    a = head_mask(shot, moved, radius)[:, :, None]
    return np.clip(a * fg + (1.0 - a) * bg + 0.5, 0, 255).astype(np.uint8)
