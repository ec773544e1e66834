"""Wall time of `ie-bench score --metrics interactivity` on N copies of interact_11 vs decode alone.

    python benchmarks/score_speed.py --data ../shared/data/interactive_eyes --copies 4 [--workers 2]

Prints frames/s for a plain decode of the same files and for the full scoring run (face tracks,
landmarks, metric, result files), and their ratio. The copies are scored as clips copy_0.. that
carry clip 11's segments, into a fresh output folder, so nothing comes from the result cache.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/interactive_eyes", help="InteractiveEyes data root")
    ap.add_argument("--copies", type=int, default=4)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--metrics", default="interactivity")
    args = ap.parse_args()

    from interactive_eyes.app.engine import score
    from interactive_eyes.media.video import iter_frames, probe

    data = Path(args.data)
    src = data / "interact_11.mp4"
    import json

    from interactive_eyes.data.manifest import default_manifest_path, parse

    raw = json.loads(default_manifest_path().read_text())
    c11 = next(c for c in raw["clips"] if c["id"] == "interact_11")
    # copies carry clip 11's segments but no ground-truth video of their own (the manifest refuses
    # two clips naming one video file)
    c11 = {k: v for k, v in c11.items() if k != "video"}
    raw["clips"] = [dict(c11, id=f"copy_{i}") for i in range(args.copies)]
    bench = parse(raw)

    with tempfile.TemporaryDirectory() as tmp:
        gen = Path(tmp) / "gen"
        gen.mkdir()
        for i in range(args.copies):
            shutil.copy(src, gen / f"copy_{i}.mp4")
        n_frames = probe(src).n_frames * args.copies

        t = time.perf_counter()
        for i in range(args.copies):
            for _ in iter_frames(gen / f"copy_{i}.mp4"):
                pass
        t_decode = time.perf_counter() - t

        t = time.perf_counter()
        res = score(gen, benchmark=bench, data_root=data, metrics=args.metrics.split(","), workers=args.workers,
                    out=Path(tmp) / "out", progress=False)
        t_score = time.perf_counter() - t

    print(f"videos: {args.copies} x interact_11 ({n_frames} frames), workers={args.workers}, metrics={args.metrics}")
    print(f"decode only : {t_decode:7.2f} s  {n_frames / t_decode:8.1f} frames/s")
    print(f"score       : {t_score:7.2f} s  {n_frames / t_score:8.1f} frames/s")
    print(f"score / decode wall-time ratio: {t_score / t_decode:.1f}x")
    for name, m in res["metrics"].items():
        print(f"{name}: value {m['value']}, n_ok {m['n_ok']}/{m['n_expected']}")


if __name__ == "__main__":
    main()
