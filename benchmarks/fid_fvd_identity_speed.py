"""Throughput of the FID feature extractor, the Fréchet distance and the identity embedders.

    python benchmarks/fid_fvd_identity_speed.py [--device cuda] [--video ../shared/data/interactive_eyes/interact_11.mp4]

* FID: pytorch-fid's FID Inception with random weights (no download: the speed does not depend
  on the values), frames of the video at their native size, batch 50 — frames/s.
* Fréchet distance at 2048-d (FID) and 400-d (FVD): scipy sqrtm route + the eigen cross-check — s/call.
* identity, dlib backend: 128-d descriptor per face on tracked boxes — faces/s (boxes from dlib's
  detector, whose time is not included: the engine's tracker supplies boxes).
* FVD: only if the real I3D is in the cache (``ie-bench weights fetch i3d_torchscript``) — clips/s.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def _random_fid_inception(device: str):
    import pytorch_fid.inception as pfi
    import torch
    import torchvision

    base = torchvision.models.inception_v3(num_classes=1008, aux_logits=False, weights=None, init_weights=False)
    original = pfi.load_state_dict_from_url
    pfi.load_state_dict_from_url = lambda url, **kw: base.state_dict()
    try:
        return pfi.InceptionV3([3]).eval().to(device), torch
    finally:
        pfi.load_state_dict_from_url = original


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", default="../shared/data/interactive_eyes/interact_11.mp4")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--frames", type=int, default=100, help="frames used for the FID timing")
    args = ap.parse_args()

    from interactive_eyes.media.video import iter_frames

    frames = [f.rgb for f in iter_frames(args.video)]
    h, w = frames[0].shape[:2]
    print(f"video {Path(args.video).name}: {len(frames)} frames {w}x{h}, device {args.device}")

    # FID features
    from interactive_eyes.metrics.fid import frames_to_tensor

    model, torch = _random_fid_inception(args.device)
    batch = frames[: min(args.frames, len(frames))]
    with torch.no_grad():
        model(frames_to_tensor(batch[:2]).to(args.device))  # warm-up
        t = time.perf_counter()
        for i in range(0, len(batch), 50):
            model(frames_to_tensor(batch[i:i + 50]).to(args.device))
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        dt = time.perf_counter() - t
    print(f"FID Inception features: {len(batch) / dt:8.1f} frames/s ({len(batch)} frames, batch 50)")

    # Fréchet distance
    from interactive_eyes.stats.frechet import frechet_distance

    rng = np.random.default_rng(0)
    for d, n in ((2048, 4096), (400, 1000)):
        x, y = rng.normal(size=(n, d)), rng.normal(size=(n, d)) + 0.1
        s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
        t = time.perf_counter()
        res = frechet_distance(x.mean(0), s1, y.mean(0), s2)
        print(f"Fréchet distance {d}-d: {time.perf_counter() - t:8.2f} s/call (method {res.method})")

    # identity, dlib backend
    try:
        from interactive_eyes.metrics.identity import DlibEmbedder, detect_faces_dlib

        emb = DlibEmbedder()
        sample = frames[::10][:10]
        boxes = [detect_faces_dlib(f, upsample=0) for f in sample]
        n = sum(len(b) for b in boxes)
        t = time.perf_counter()
        for f, b in zip(sample, boxes):
            emb.embed(np.ascontiguousarray(f), [(x, None) for x in b])
        print(f"identity (dlib) embeddings: {n / (time.perf_counter() - t):8.1f} faces/s")
    except ImportError as exc:
        print(f"identity (dlib): skipped ({exc})")

    # FVD, real detector only
    from interactive_eyes.weights import WeightsError, resolve

    try:
        path = resolve("i3d_torchscript", offline=True)
    except WeightsError:
        print("FVD: skipped (i3d_torchscript not in the cache)")
        return
    from interactive_eyes.metrics.fvd import FVD

    fvd = FVD(device=args.device, weights_path=str(path))
    clips = [np.stack(frames[i:i + 16]) for i in range(0, len(frames) - 15, 16)]
    fvd.features(clips[:1])
    t = time.perf_counter()
    for c in clips:
        fvd.features([c])
    print(f"FVD I3D features: {len(clips) / (time.perf_counter() - t):8.2f} clips/s")


if __name__ == "__main__":
    main()
