"""Reference sets for set-level metrics (FID, FVD, KID, KVD): which files, their frames, and stored statistics.

A reference set is a folder of videos and/or images (real clips fetched with
``ie-bench data fetch --videos``, or any other set), or an ``.npz`` of precomputed statistics
written by ``ie-bench stats``. Statistics files carry their provenance (extractor, weights
SHA-256, feature size, frame/clip policy) so that a reference computed with another network or
protocol is refused instead of silently compared. By default they also hold every sample's float32
feature row (``features``; ``ReferenceSet``), which the kernel distances KID/KVD need; a file without
them serves FID/FVD only (``no_features_reason`` is the one-line refusal for KID/KVD).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from interactive_eyes.stats.frechet import GaussianStats, load_mu_sigma

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")
# pytorch-fid's accepted image extensions (spec §2.1)
IMAGE_EXTENSIONS = (".bmp", ".jpg", ".jpeg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp")
STATS_EXTENSION = ".npz"


class ReferenceError(ValueError):
    """An unusable reference set. ``str(err)`` is one line naming the file or folder."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        super().__init__(f"{self.path}: {' '.join(reason.split())}")


def reference_files(source: str | os.PathLike, *, videos: bool = True, images: bool = True) -> list[Path]:
    """The media files of a reference folder (recursively, sorted), or the single file given."""
    src = Path(source)
    exts = (VIDEO_EXTENSIONS if videos else ()) + (IMAGE_EXTENSIONS if images else ())
    if src.is_file():
        if src.suffix.lower() not in exts:
            raise ReferenceError(src, f"not a supported {'video/image' if images else 'video'} file")
        return [src]
    if not src.is_dir():
        raise ReferenceError(src, "reference not found (expected a folder, a media file or a .npz)")
    files = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in exts)
    if not files:
        kinds = " or ".join(k for k, on in (("videos", videos), ("images", images)) if on)
        raise ReferenceError(src, f"no {kinds} found ({', '.join(exts)})")
    return files


def is_image(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def iter_media_frames(path: str | os.PathLike) -> Iterator[tuple[int, float, np.ndarray]]:
    """(index, time, RGB uint8 H×W×3) for every frame of a video, or the one frame of an image.

    Images are read like pytorch-fid reads them: ``PIL.Image.open(...).convert("RGB")``.
    """
    p = Path(path)
    if is_image(p):
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(p) as im:
                rgb = np.asarray(im.convert("RGB"))
        except (OSError, UnidentifiedImageError) as exc:
            raise ReferenceError(p, f"not a readable image ({exc.__class__.__name__})") from None
        yield 0, 0.0, rgb
        return
    from interactive_eyes.media.video import iter_frames

    for fr in iter_frames(p):
        yield fr.index, fr.time, fr.rgb


@dataclass
class ReferenceSet:
    """A reference set's statistics and, for the kernel distances (KID/KVD), its per-sample
    features: float32 (N, dim) rows in file order, then frame/clip order (None when not kept)."""

    stats: GaussianStats
    features: np.ndarray | None = None

    @property
    def count(self) -> int:
        return self.stats.count


FEATURES_KEY = "features"
# What a statistics file records about its features (meta ``features``): the dtype, and that there
# is one row per sample. float32 is what the networks output, so nothing is rounded away.
FEATURES_META = "float32, one row per sample"


def save_reference(stats: GaussianStats, path: str | os.PathLike, meta: dict[str, str],
                   features: np.ndarray | None = None) -> Path:
    """Write reference statistics with their provenance (see ``GaussianStats.save``); with
    ``features`` also every sample's feature row (KID/KVD), recorded as ``meta_features``."""
    meta = {k: str(v) for k, v in meta.items()}
    extra = None
    if features is not None:
        f = np.asarray(features, dtype=np.float32)
        if f.ndim != 2 or f.shape != (stats.count, stats.dim):
            raise ValueError(f"features {f.shape} do not match the statistics ({stats.count}, {stats.dim})")
        extra = {FEATURES_KEY: f}
        meta["features"] = FEATURES_META
    return stats.save(path, extra=extra, **meta)


def no_features_reason(metric: str, family: str) -> str:
    """The one-line reason a statistics file cannot serve a kernel distance."""
    return (f"holds no per-sample features, which {metric} needs (written before KID/KVD support, "
            f"with --no-features, or by pytorch-fid); recompute it with "
            f"`ie-bench stats REF -o FILE.npz --metric {family}`, or pass the reference folder")


def load_reference(path: str | os.PathLike, expect: dict[str, str], *,
                   features: bool = False) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read an ``.npz`` of reference statistics and check its provenance against ``expect``.

    Returns (arrays, metadata): the arrays are ``GaussianStats.to_arrays()`` plus ``mu``/``sigma``
    when the file has full statistics, or only ``mu``/``sigma`` (and no metadata) for a plain
    pytorch-fid ``--save-stats`` file, which is accepted with ``meta["provenance"] = "unverified"``
    as long as its feature size matches ``expect["dims"]``. With ``features`` (KID/KVD) the
    arrays also hold the file's ``features`` rows, and a file without them is a ``ReferenceError``
    (raised by the caller with its own metric name through ``no_features_reason``: here the
    key is simply absent).
    """
    p = Path(path)
    if not p.is_file():
        raise ReferenceError(p, "statistics file not found")
    try:
        stats, meta = GaussianStats.load(p)
    except ValueError:
        try:
            mu, sigma = load_mu_sigma(p)
        except (OSError, ValueError) as exc:
            raise ReferenceError(p, f"not a statistics file ({exc})") from None
        dims = expect.get("dims")
        if dims is not None and mu.shape[0] != int(dims):
            raise ReferenceError(p, f"{mu.shape[0]}-d statistics, expected {dims}-d")
        return {"mu": mu, "sigma": sigma}, {"provenance": "unverified (mu/sigma only, no extractor record)"}
    for key, want in expect.items():
        have = meta.get(key)
        if have is None:
            raise ReferenceError(p, f"statistics record no '{key}' (expected {want}); recompute with `ie-bench stats`")
        if str(have) != str(want):
            raise ReferenceError(p, f"statistics were computed with {key}={have}, this run uses {want}")
    arrays = stats.to_arrays()
    if features:
        with np.load(p, allow_pickle=False) as z:
            if FEATURES_KEY in z.files:
                f = np.asarray(z[FEATURES_KEY])
                if f.ndim != 2 or f.shape != (stats.count, stats.dim):
                    raise ReferenceError(p, f"features array {f.shape} does not match the statistics "
                                            f"({stats.count}, {stats.dim})")
                arrays[FEATURES_KEY] = f
    return arrays, meta


def reference_arrays_to_stats(arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, int | None]:
    """(mu, sigma, count or None) from either GaussianStats arrays or a mu/sigma pair."""
    if "sum" in arrays:
        st = GaussianStats.from_arrays(arrays)
        return st.mean, st.cov, st.count
    if "mu" in arrays and "sigma" in arrays:
        n = int(np.asarray(arrays["count"])) if "count" in arrays else None
        return np.asarray(arrays["mu"], np.float64), np.asarray(arrays["sigma"], np.float64), n
    raise ValueError(f"reference statistics need 'sum'/'sum_outer_triu'/'count' or 'mu'/'sigma', got {sorted(arrays)}")
