"""The whole benchmark's scoring time: 29 clips, every metric, random weights of the real networks.

    python benchmarks/full_benchmark.py --device cuda                 # the issue-15 target: <= 15 s on one H100/H200
    python benchmarks/full_benchmark.py --device cpu --clips 2        # what a CPU can do in a minute or two
    python benchmarks/full_benchmark.py --device cuda --devices cuda:0,cuda:1   # total only, one worker per GPU

The clips are copies of the released ground-truth video of clip 11 (206 frames, 8.6 s, two
people), scored as clips ``bench_00 ..`` that carry clip 11's segments and audio tracks, so every
metric runs on real faces and speech. The models are random networks of the real architectures in
their real file formats (benchmarks/random_models.py: SyncNet, FID Inception, I3D, ArcFace
IResNet-50); speed does not depend on the weights' values. FID/KID/FVD/KVD use one copy of the
real video as their reference set. Nothing comes from a result cache (a fresh output folder).

Printed per stage, summed over clips (the in-process run, so the stages are timed where they
run): decode (time the engine waited on the decoder thread; a separate plain decode pass gives the
decoder's own rate), face tracks and landmarks, each metric's per-clip steps (start / update /
finish: its model time, batched in the metric, and its own arithmetic), each set-level step
(reference statistics and reduce), the result files, and the total wall time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

TIMES: dict[str, float] = defaultdict(float)
COUNTS: dict[str, int] = defaultdict(int)


def _timed(key: str, fn):
    def wrapper(*a, **kw):
        t = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            TIMES[key] += time.perf_counter() - t
            COUNTS[key] += 1
    return wrapper


def instrument(metric_names: list[str]) -> None:
    """Wrap the engine's stages with timers (in this process only)."""
    from interactive_eyes.app import engine
    from interactive_eyes.media import video
    from interactive_eyes.metrics import METRICS

    frames_of = video.iter_frames_prefetch

    def timed_frames(*a, **kw):
        it = frames_of(*a, **kw)
        while True:
            t = time.perf_counter()
            try:
                frame = next(it)
            except StopIteration:
                TIMES["decode (wait)"] += time.perf_counter() - t
                return
            TIMES["decode (wait)"] += time.perf_counter() - t
            COUNTS["decode (wait)"] += 1
            yield frame

    video.iter_frames_prefetch = timed_frames
    make_tracker = engine._default_tracker

    def timed_tracker(*a, **kw):
        tracker = make_tracker(*a, **kw)
        tracker.update = _timed("face tracks + landmarks", tracker.update)
        return tracker

    engine._default_tracker = timed_tracker
    for name in metric_names:
        cls = METRICS.get(name)
        for step in ("start", "update", "finish", "load_reference", "reduce"):
            fn = getattr(cls, step, None)
            if fn is not None and not getattr(fn, "_timed", False):
                setattr(cls, step, _timed_method(step, fn))


_ACTIVE: list[bool] = []


def _timed_method(step: str, fn):
    """Time a metric's step under the calling instance's name; a step that calls its parent
    class's (KID on FID, KVD on FVD) is timed once, by the outermost call."""
    def wrapper(self, *a, **kw):
        if _ACTIVE:
            return fn(self, *a, **kw)
        key = f"set-level {self.name} ({step})" if step in ("load_reference", "reduce") else f"metric {self.name}"
        _ACTIVE.append(True)
        t = time.perf_counter()
        try:
            return fn(self, *a, **kw)
        finally:
            _ACTIVE.pop()
            TIMES[key] += time.perf_counter() - t
            COUNTS[key] += step == "finish" or step == "reduce" or step == "load_reference"
    wrapper._timed = True
    return wrapper


def build_clips(data: Path, n: int, folder: Path):
    """``n`` copies of interact_11.mp4 as clips bench_00.. with clip 11's manifest entry."""
    from interactive_eyes.data.manifest import default_manifest_path, parse

    raw = json.loads(default_manifest_path().read_text())
    c11 = next(c for c in raw["clips"] if c["id"] == "interact_11")
    c11 = {k: v for k, v in c11.items() if k != "video"}  # one video file per clip (manifest rule)
    raw["clips"] = [dict(c11, id=f"bench_{i:02d}") for i in range(n)]
    gen = folder / "gen"
    gen.mkdir()
    for i in range(n):
        shutil.copy(data / "interact_11.mp4", gen / f"bench_{i:02d}.mp4")
    ref = folder / "reference"
    ref.mkdir()
    shutil.copy(data / "interact_11.mp4", ref / "real_11.mp4")
    return parse(raw), gen, ref


def plain_decode(gen: Path) -> tuple[int, float]:
    from interactive_eyes.media.video import iter_frames

    t, n = time.perf_counter(), 0
    for p in sorted(gen.glob("*.mp4")):
        for _ in iter_frames(p):
            n += 1
    return n, time.perf_counter() - t


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/interactive_eyes", help="InteractiveEyes data root (clip 11's video and audio)")
    ap.add_argument("--device", default="cuda", help="cuda or cpu")
    ap.add_argument("--clips", type=int, default=29, help="number of clips (the benchmark has 29)")
    ap.add_argument("--metrics", default=None, help="comma-separated (default: every registered metric)")
    ap.add_argument("--workers", type=int, default=1, help="worker processes (then only the total is timed)")
    ap.add_argument("--devices", default=None, help="one worker per device, e.g. cuda:0,cuda:1 (total only)")
    ap.add_argument("--landmarks", default="mediapipe")
    args = ap.parse_args(argv)

    import torch

    from interactive_eyes.app.engine import EngineOptions, score
    from interactive_eyes.app.executors import make_executor, parse_devices
    from interactive_eyes.metrics import METRICS
    from random_models import register_random_weights, write_random_weights

    names = args.metrics.split(",") if args.metrics else METRICS.names()
    data = Path(args.data)
    with tempfile.TemporaryDirectory(prefix="ie-bench-full-") as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        w = write_random_weights(tmp / "weights")
        register_random_weights(w)
        t_weights = time.perf_counter() - t
        bench, gen, ref = build_clips(data, args.clips, tmp)
        n_frames, t_plain = plain_decode(gen)
        opts = {"sync": {"weights_path": str(w["syncnet"])}, "fid": {"weights_path": str(w["fid"])},
                "kid": {"weights_path": str(w["fid"])}, "fvd": {"weights_path": str(w["fvd"])},
                "kvd": {"weights_path": str(w["fvd"])},
                "identity": {"backend": "arcface", "weights_path": str(w["identity"])}}
        options = EngineOptions(device=args.device, landmark_backend=args.landmarks,
                                metric_options={k: v for k, v in opts.items() if k in names},
                                references={k: str(ref) for k in ("fid", "kid", "fvd", "kvd") if k in names})
        executor = make_executor(workers=args.workers, devices=parse_devices(args.devices))
        staged = args.workers == 1 and not args.devices
        if staged:
            instrument(names)
        t = time.perf_counter()
        res = score(gen, benchmark=bench, data_root=data, out=tmp / "out", metrics=names, options=options,
                    executor=executor, progress=False)
        total = time.perf_counter() - t

    gpu = torch.cuda.get_device_name(0) if args.device.startswith("cuda") and torch.cuda.is_available() else "none"
    print(f"full benchmark: {args.clips} clips x interact_11 ({n_frames} frames), device={args.device} (GPU: {gpu}), "
          f"torch threads={torch.get_num_threads()}, {executor.describe()}")
    print(f"random weights written in {t_weights:.1f} s (not counted)")
    print(f"plain decode pass (one process): {t_plain:7.2f} s  {n_frames / t_plain:8.1f} frames/s")
    if staged:
        print(f"{'stage':<44} {'seconds':>8} {'calls':>7}")
        for key in sorted(TIMES, key=lambda k: (not k.startswith("decode"), not k.startswith("face"), k)):
            print(f"{key:<44} {TIMES[key]:8.2f} {COUNTS[key]:7d}")
        accounted = sum(TIMES.values())
        print(f"{'other (probe, hashing, checks, result files)':<44} {total - accounted:8.2f}")
    print(f"{'TOTAL score wall time':<44} {total:8.2f}   ({args.clips * 206 / total:.1f} frames/s)")
    for name, m in res["metrics"].items():
        print(f"  {name:<14} n_ok={m['n_ok']}/{m['n_expected']}" + (f"  failures: {m['failures'][0]['reason'][:120]}"
                                                                     if m["failures"] else ""))
    for name, reason in res.get("skipped_metrics", {}).items():
        print(f"  {name:<14} skipped: {reason}")


if __name__ == "__main__":
    main()
