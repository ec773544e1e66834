"""Seconds per generated clip for the built-in methods (static, puppet) on InteractiveEyes clip 11.

    python benchmarks/generate_speed.py --data ../shared/data --repeats 2

Clip 11 (8.6 s, two people) with its real reference frame (anytalker_examples/images/2p-0.png,
852x480) -> 215 frames at 25 fps. Prints, per method, the wall time of one whole clip (the
best of --repeats), split into preparation (reference, faces, audio, signals) and
rendering + H.264/AAC encoding, and the frames per second it amounts to. Face location
(MediaPipe) is counted once per method instance, as in a run over many clips.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data", help="the shared data folder (interactive_eyes/, anytalker_examples/)")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    from interactive_eyes.baselines import METHODS
    from interactive_eyes.baselines.base import Item
    from interactive_eyes.data import manifest

    data = Path(args.data)
    clip = manifest.load().clip("interact_11")
    item = Item.from_clip(clip, data / "interactive_eyes", data / "anytalker_examples" / "images" / "2p-0.png")
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("static", "puppet"):
            method = METHODS.get(name)()
            t = time.perf_counter()
            reason = method.check(item)
            t_check = time.perf_counter() - t
            if reason:
                raise SystemExit(f"{name}: {reason}")
            best = None
            for r in range(args.repeats):
                t = time.perf_counter()
                info = method.generate(item, Path(tmp) / f"{name}_{r}.mp4", seed=0)
                wall = time.perf_counter() - t
                if best is None or wall < best[0]:
                    best = (wall, info)
            wall, info = best
            split = {k: v for k, v in info.items() if k.startswith("seconds_")}
            print(f"{name:<7} {wall:6.2f} s/clip  ({info['frames']} frames {info['width']}x{info['height']}, "
                  f"{info['frames'] / wall:5.1f} frames/s; check {t_check:.2f} s; {split})")


if __name__ == "__main__":
    main()
