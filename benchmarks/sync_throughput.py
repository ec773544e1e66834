"""Throughput of the lip-sync metric (SyncNet v2): windows per second.

    python benchmarks/sync_throughput.py                       # CPU, and CUDA too when present
    python benchmarks/sync_throughput.py --device cpu --windows 100
    python benchmarks/sync_throughput.py --video ../shared/data/interactive_eyes/interact_11.mp4

The network has random weights (no download; speed does not depend on the values).

1. Network alone: video windows (5 x 224 x 224 BGR crops -> 1024-d) and audio windows
   (13 x 20 MFCC -> 1024-d) per second, at batch 20 (the reference's) and a larger batch.
2. Whole metric on a clip (``--video``, default interact_11.mp4 from $IE_BENCH_TEST_DATA when it
   is set, else a synthetic 8.5 s, 832x448, 24 fps two-person clip): decode, 25 fps grid, crops,
   embeddings and the offset search through the ``sync`` metric contract, mask mode (Sync-C*) and
   every window (what single-person Sync-C and framewise mode embed). Face boxes are given (the
   shared tracker's time is not counted: it is shared by every face metric). Prints scored
   windows per second (after one warm-up clip) and the peak number of frames held by the crop
   delay ring.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from interactive_eyes.metrics import syncnet as sn  # needs ie-bench installed (pip install -e .)
from interactive_eyes.metrics.sync import SyncC


def _sync(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def bench_network(device: str, windows: int, batch: int) -> tuple[float, float]:
    net = sn.SyncNet().eval().to(device)
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (windows + 4, 224, 224, 3), dtype=np.uint8)
    mfcc = rng.normal(0, 10, (13, 4 * windows + 16))
    # warm-up with the measured batch shape (oneDNN / cuDNN pick their kernels on first use)
    sn.embed_video_windows(net, crops[: min(batch, windows) + 4], device=device, batch_size=batch)
    sn.embed_audio_windows(net, mfcc, range(min(batch, windows)), device=device, batch_size=batch)
    _sync(device)
    t = time.perf_counter()
    sn.embed_video_windows(net, crops, device=device, batch_size=batch)
    _sync(device)
    tv = time.perf_counter() - t
    t = time.perf_counter()
    sn.embed_audio_windows(net, mfcc, range(windows), device=device, batch_size=batch)
    _sync(device)
    ta = time.perf_counter() - t
    return windows / tv, windows / ta


def _synthetic_clip(folder: Path) -> tuple[Path, list]:
    """8.5 s, 832 x 448, 24 fps, two faces (boxes known), two own audio tracks."""
    from scipy.io import wavfile

    from interactive_eyes.media.video import write_video

    rng = np.random.default_rng(0)
    n, fps, h, w = 205, 24.0, 448, 832
    bg = np.kron(rng.random((h // 32, w // 32, 3)), np.ones((32, 32, 1))) * 120 + 60
    boxes = []
    frames = []
    for i in range(n):
        img = bg.copy()
        bs = [np.array([120 + 10 * np.sin(i / 9), 120, 300 + 10 * np.sin(i / 9), 330]),
              np.array([560, 110 + 5 * np.cos(i / 7), 740, 320 + 5 * np.cos(i / 7)])]
        for b in bs:
            img[int(b[1]) : int(b[3]), int(b[0]) : int(b[2])] = [200, 160, 140]
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
        boxes.append(bs)
    path = write_video(folder / "clip.mp4", frames, fps)
    for role in ("left", "right"):
        (folder / f"audio_{role}").mkdir()
        a = (rng.normal(0, 3000, int(n / fps * 16000))).astype(np.int16)
        wavfile.write(folder / f"audio_{role}" / f"clip_{role}.wav", 16000, a)
    return path, boxes


def bench_metric(device: str, video: Path | None, mode: str, batch: int) -> dict:
    from interactive_eyes.data.manifest import Clip, Person, complement, load
    from interactive_eyes.media.video import iter_frames, probe
    from interactive_eyes.metrics.base import ClipContext, FaceBox, FrameData

    tmp = tempfile.TemporaryDirectory()
    if video is None:
        path, boxes = _synthetic_clip(Path(tmp.name))
        dur = 205 / 24
        people = tuple(
            Person(role=r, audio=f"audio_{r}/clip_{r}.wav", speaking=seg, listening=complement(seg, dur))
            for r, seg in (("left", ((4.5, dur),)), ("right", ((0.0, 4.5),)))
        )
        clip, root = Clip(id="clip", duration=dur, people=people), Path(tmp.name)
        faces = [tuple(FaceBox(*b) for b in bs) for bs in boxes]
    else:
        path = video
        clip = load().clip(video.stem)
        root = video.parent
        faces = _track(video, clip.n_people)
    net = sn.SyncNet().eval()
    frames = list(iter_frames(path))
    info = probe(path)
    if mode == "all":  # every window embedded (single-person Sync-C and framewise mode do this)
        metric = SyncC(model=net, sync_star_mode="framewise", batch_size=batch, device=device)
    else:
        metric = SyncC(model=net, sync_star_mode="mask", batch_size=batch, device=device)
    ctx = ClipContext(clip=clip, video_path=path, info=info, data_root=root, device=device)
    _sync(device)
    t = time.perf_counter()
    state = metric.start(ctx)
    for f in frames:
        metric.update(state, FrameData(index=f.index, time=f.time, rgb=f.rgb, faces=faces[f.index]))
    result = metric.finish(state)
    _sync(device)
    elapsed = time.perf_counter() - t
    tmp.cleanup()
    if result.status != "ok":
        raise SystemExit(f"metric failed: {result.reason}")
    nv = result.details["n_video_windows_embedded"]
    return {
        "seconds": elapsed,
        "video_windows": nv,
        "audio_windows": result.details["n_audio_windows_embedded"],
        "windows_per_s": nv / elapsed,
        "clip_seconds": info.duration,
        "realtime_factor": info.duration / elapsed,
        "max_frames_held": result.details["max_frames_held"],
    }


def _track(video: Path, n_people: int):
    from interactive_eyes.faces.track import FaceTracker
    from interactive_eyes.media.video import iter_frames

    tracker = FaceTracker(n_people, landmarks=None)
    return [tuple(tracker.update(f.rgb, f.time)[0]) for f in iter_frames(video)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", action="append", help="cpu / cuda (repeatable; default cpu and cuda if present)")
    ap.add_argument("--windows", type=int, default=128, help="windows per network measurement")
    ap.add_argument("--batch", type=int, default=64, help="the larger batch size tried besides 20 (also the metric's)")
    ap.add_argument("--video", type=Path, help="a clip of the shipped manifest (boxes from the shared tracker)")
    args = ap.parse_args()
    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    video = args.video
    if video is None and os.environ.get("IE_BENCH_TEST_DATA"):
        cand = Path(os.environ["IE_BENCH_TEST_DATA"]) / "interactive_eyes" / "interact_11.mp4"
        video = cand if cand.is_file() else None
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    for dev in devices:
        name = torch.cuda.get_device_name(0) if dev.startswith("cuda") else "CPU"
        for batch in sorted({20, args.batch}):
            n = max(args.windows, 2 * batch) if dev == "cpu" else max(args.windows, 10 * batch)
            v, a = bench_network(dev, n, batch)
            print(f"[{dev} {name}] network, batch {batch:3d}: video {v:8.1f} windows/s, audio {a:8.1f} windows/s")
        bench_metric(dev, video, "mask", args.batch)  # warm-up: an engine scores many clips in one process
        for mode in ("mask", "all"):
            r = bench_metric(dev, video, mode, args.batch)
            what = video.name if video else "synthetic 832x448 24 fps two-person clip"
            print(
                f"[{dev} {name}] metric on {what}, {'Sync-C* mask' if mode == 'mask' else 'all windows'}: "
                f"{r['video_windows']} video + {r['audio_windows']} audio windows in {r['seconds']:.2f} s = "
                f"{r['windows_per_s']:.1f} video windows/s ({r['realtime_factor']:.2f}x real time for "
                f"{r['clip_seconds']:.2f} s of video); at most {r['max_frames_held']} frames held"
            )


if __name__ == "__main__":
    main()
