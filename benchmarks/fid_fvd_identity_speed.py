"""Throughput of the FID feature extractor, the Fréchet distance and the identity embedders.

    python benchmarks/fid_fvd_identity_speed.py [--device cuda] [--video ../shared/data/interactive_eyes/interact_11.mp4]

* FID: pytorch-fid's FID Inception with random weights (no download: the speed does not depend
  on the values), frames of the video at their native size, batch 50 — frames/s.
* Fréchet distance at 2048-d (FID) and 400-d (FVD): scipy sqrtm route + the eigen cross-check — s/call.
* identity, dlib backend: 128-d descriptor per face on tracked boxes — faces/s one call per face
  and batched (boxes from dlib's detector, whose time is not included: the engine's tracker
  supplies boxes); and on the shared real videos (clip 11, the three talking heads) the clip value
  with every frame embedded vs the default sampling (every 0.2 s), with the embedder's time for
  each (``--identity-only`` runs just this part).
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
    ap.add_argument("--identity-only", action="store_true", help="only the identity timings and sampling check")
    ap.add_argument("--data", default="../shared/data", help="shared test data (for the sampling check)")
    args = ap.parse_args()
    if args.identity_only:
        identity_sampling(Path(args.data))
        return

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
    identity_speed(frames)

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


def identity_speed(frames) -> None:
    try:
        from interactive_eyes.metrics.identity import DlibEmbedder, detect_faces_dlib
    except ImportError as exc:
        print(f"identity (dlib): skipped ({exc})")
        return
    emb = DlibEmbedder()
    sample = [np.ascontiguousarray(f) for f in frames[::10][:10]]
    faces = [[(b, None) for b in detect_faces_dlib(f, upsample=0)] for f in sample]
    n = sum(len(x) for x in faces)
    t = time.perf_counter()
    for f, x in zip(sample, faces):
        emb.embed_crops(emb.crops(f, x))  # one network call per frame
    one = time.perf_counter() - t
    t = time.perf_counter()
    emb.embed_crops([c for f, x in zip(sample, faces) for c in emb.crops(f, x)])  # one call for all
    batched = time.perf_counter() - t
    print(f"identity (dlib) embeddings: {n / one:8.1f} faces/s per frame, {n / batched:8.1f} faces/s batched ({n} faces)")


# (video, people, max_side, max_frames): the shared real videos; the 1080x1920 ones are decoded
# at 960 px on the long side (faces stay > 200 px), the 30 fps one is cut to its first 10 s.
SAMPLING_VIDEOS = [("interactive_eyes/interact_11.mp4", 2, None, None),
                   ("talking_heads/infinitetalk_ref_video.mp4", 1, None, None),
                   ("talking_heads/latentsync_demo1.mp4", 1, 960, None),
                   ("talking_heads/latentsync_demo3.mp4", 1, 960, 300)]


class CachingEmbedder:
    """Wraps an embedder: a crop already embedded (same bytes) is not embedded again, so the
    sampled run reuses the every-frame run's embeddings; ``seconds``/``n`` count network work."""

    def __init__(self, inner):
        self.inner, self.cache, self.seconds, self.n, self.files = inner, {}, 0.0, 0, inner.files

    def crops(self, rgb, faces):
        return self.inner.crops(rgb, faces)

    def embed_crops(self, crops):
        import hashlib

        keys = [hashlib.sha1(np.ascontiguousarray(c).tobytes()).hexdigest() for c in crops]
        todo = [(k, c) for k, c in zip(keys, crops) if k not in self.cache]
        if todo:
            t = time.perf_counter()
            for (k, _), e in zip(todo, self.inner.embed_crops([c for _, c in todo])):
                self.cache[k] = e
            self.seconds += time.perf_counter() - t
            self.n += len(todo)
        return [self.cache[k] for k in keys]


def every_frame_vs_sampled(path, n_people: int, max_side=None, max_frames=None, **sampled_kw):
    """(every-frame result, sampled result, faces embedded, embedder seconds) for one video, in one
    decode: both metric instances see the same frames and dlib boxes (sorted left to right)."""
    from interactive_eyes.media.video import iter_frames
    from interactive_eyes.metrics.base import FrameData
    from interactive_eyes.metrics.identity import DlibEmbedder, IdentitySimilarity, detect_faces_dlib

    shared = CachingEmbedder(DlibEmbedder())
    every = IdentitySimilarity(backend="dlib", sample_seconds=0, batch_size=1)
    sampled = IdentitySimilarity(backend="dlib", **sampled_kw)
    every._embedder = sampled._embedder = shared
    states = [every.start(None), sampled.start(None)]
    counts = {"every": 0, "sampled": 0}
    for fr in iter_frames(path, max_side=max_side):
        if max_frames is not None and fr.index >= max_frames:
            break
        rgb = np.ascontiguousarray(fr.rgb)
        boxes = detect_faces_dlib(rgb, upsample=0)
        faces = tuple(boxes) if len(boxes) == n_people else (None,) * n_people
        frame = FrameData(index=fr.index, time=fr.time, rgb=rgb, faces=faces)
        n0 = shared.n
        every.update(states[0], frame)  # batch 1: embedded now, so the sampled run finds it cached
        counts["every"] += shared.n - n0
        if sampled._sampled(dict(states[1]), frame):
            counts["sampled"] += sum(f is not None for f in faces)
        sampled.update(states[1], frame)
    return every.finish(states[0]), sampled.finish(states[1]), counts, shared.seconds / max(shared.n, 1)


def identity_sampling(data: Path) -> None:
    # seconds = faces embedded x the mean embedder time per face (the sampled run reuses the
    # every-frame run's embeddings of the same crops, so its own time is this estimate)
    print("identity (dlib): every frame vs default sampling (first frame at or after every 0.2 s)")
    print(f"{'video':42s} {'every':>8s} {'sampled':>8s} {'|diff|':>8s} {'faces':>11s} {'s every':>8s} {'s sampled':>9s}")
    for rel, n_people, max_side, max_frames in SAMPLING_VIDEOS:
        path = data / rel
        if not path.exists():
            print(f"{rel}: missing, skipped")
            continue
        ev, sa, counts, per_face = every_frame_vs_sampled(path, n_people, max_side, max_frames)
        diff = abs(ev.value - sa.value)
        print(f"{rel:42s} {ev.value:8.5f} {sa.value:8.5f} {diff:8.5f} {counts['every']:5d}/{counts['sampled']:<5d} "
              f"{counts['every'] * per_face:8.1f} {counts['sampled'] * per_face:9.1f}", flush=True)
        for role in ev.per_person:
            print(f"    {role}: every {ev.per_person[role]:.5f} sampled {sa.per_person[role]:.5f}", flush=True)


if __name__ == "__main__":
    main()
