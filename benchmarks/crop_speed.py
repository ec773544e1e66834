"""Speed of the exact ROI crop (faces.crop.warp_roi) against the implementation it replaced.

    taskset -c 1 python benchmarks/crop_speed.py [--video FILE] [--calls 200] [--rounds 5]

On a real frame (the middle one) of interact_11.mp4 (832x448): the landmark crop at a realistic
face ROI (size 256, border 'replicate', a near-axis-aligned rotation of 0.05 rad, and the same
ROI unrotated) and the detector's letterbox (size 128, border 'zero', rotation 0). Prints ms per
call in CPU time (``time.process_time``: the median of ``--calls`` calls, the median over
``--rounds`` rounds that alternate old and new so both see the same machine load), the core the
process is pinned to, and the largest difference between the two crops.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VIDEO = Path(os.environ.get("IE_BENCH_TEST_DATA", "/work/shared/data")) / "interactive_eyes" / "interact_11.mp4"


def _ms_per_call(fn, calls: int) -> float:
    times = []
    for _ in range(calls):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return float(np.median(times)) * 1e3


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", default=str(DEFAULT_VIDEO))
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "tests" / "faces"))
    from test_crop import old_warp_roi  # the replaced implementation, kept as the tests' reference

    from interactive_eyes.faces.crop import warp_roi
    from interactive_eyes.faces.mediapipe_mesh import Roi
    from interactive_eyes.media.video import read_frames

    frames, _ = read_frames(args.video)
    rgb = np.ascontiguousarray(frames[len(frames) // 2])
    del frames
    h, w = rgb.shape[:2]
    side = float(max(h, w))
    cases = [
        ("landmarks 256, rotation 0.05", Roi(220.3, 180.7, 230.0, 230.0, 0.05), 256, "replicate"),
        ("landmarks 256, rotation 0", Roi(220.3, 180.7, 230.0, 230.0, 0.0), 256, "replicate"),
        ("detector letterbox 128", Roi(w / 2.0, h / 2.0, side, side, 0.0), 128, "zero"),
    ]
    pinned = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    print(f"frame {w}x{h} of {Path(args.video).name}; pinned to cores {pinned}; "
          f"ms per call = median of {args.calls} calls (process_time), median of {args.rounds} rounds")
    for name, roi, size, border in cases:
        old, new = [], []
        for _ in range(args.rounds):
            old.append(_ms_per_call(lambda: old_warp_roi(rgb, roi, size, border), args.calls))
            new.append(_ms_per_call(lambda: warp_roi(rgb, roi, size, border), args.calls))
        diff = float(np.abs(warp_roi(rgb, roi, size, border) - old_warp_roi(rgb, roi, size, border)).max())
        o, n = float(np.median(old)), float(np.median(new))
        print(f"{name:32s} old {o:6.3f} ms  new {n:6.3f} ms  x{o / n:4.1f}  max |new - old| {diff:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
