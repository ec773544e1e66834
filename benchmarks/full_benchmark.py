"""The whole benchmark's scoring time: 29 clips, every metric, random weights of the real networks.

    python benchmarks/full_benchmark.py --device cuda                 # the issue-15 target: <= 15 s on one H100/H200
    python benchmarks/full_benchmark.py --device cuda --clips-in-flight 1   # the same without cross-clip batching
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

On ``--device cuda`` the clips are scored ``--clips-in-flight`` at a time (default 8) in threads
of one process whose model calls are merged across clips (metrics/batching.py); on ``cpu`` one at
a time unless asked. With several clips in flight the per-stage times are summed over the clip
threads (they overlap, so they add up to more than the wall time). For every network the number
of forward calls, the items and the mean batch size it actually ran at are printed (in this
process; not with ``--workers`` / ``--devices``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

TIMES: dict[str, float] = defaultdict(float)
COUNTS: dict[str, int] = defaultdict(int)
_LOCK = threading.Lock()  # clip threads (--clips-in-flight) add to the same totals
# On a GPU: two busy threads per clip (the clip's own and its decoder's prefetch thread) on the
# 16 cores of the H100 machine.
GPU_CLIPS_IN_FLIGHT = 8


def _add(key: str, seconds: float, calls: int = 1) -> None:
    with _LOCK:
        TIMES[key] += seconds
        COUNTS[key] += calls


def _timed(key: str, fn):
    def wrapper(*a, **kw):
        t = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            _add(key, time.perf_counter() - t)
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
                _add("decode (wait)", time.perf_counter() - t, 0)
                return
            _add("decode (wait)", time.perf_counter() - t)
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


_ACTIVE = threading.local()  # per clip thread


def _timed_method(step: str, fn):
    """Time a metric's step under the calling instance's name; a step that calls its parent
    class's (KID on FID, KVD on FVD) is timed once, by the outermost call."""
    def wrapper(self, *a, **kw):
        if getattr(_ACTIVE, "on", False):
            return fn(self, *a, **kw)
        key = f"set-level {self.name} ({step})" if step in ("load_reference", "reduce") else f"metric {self.name}"
        _ACTIVE.on = True
        t = time.perf_counter()
        try:
            return fn(self, *a, **kw)
        finally:
            _ACTIVE.on = False
            _add(key, time.perf_counter() - t, int(step in ("finish", "reduce", "load_reference")))
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


def differences(out_a: Path, out_b: Path) -> dict[str, tuple[float, float]]:
    """Per metric, the largest absolute difference between two runs' per-clip numbers (values,
    per-person values, every array of the stored statistics) and that difference relative to the
    largest magnitude of the quantity it occurs in."""
    import numpy as np

    def records(out):
        return {(r["clip"], r["metric"]): r for r in map(json.loads, (out / "per_clip.jsonl").read_text().splitlines())}

    a, b = records(out_a), records(out_b)
    worst: dict[str, tuple[float, float]] = {}

    def note(metric, x, y):
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        if x.shape != y.shape:
            worst[metric] = (float("inf"), float("inf"))
            return
        d = float(np.max(np.abs(x - y))) if x.size else 0.0
        r = d / max(float(np.max(np.abs(x))) if x.size else 0.0, 1e-30)
        old = worst.get(metric, (0.0, 0.0))
        worst[metric] = (max(old[0], d), max(old[1], r))

    for key, ra in a.items():
        rb, metric = b.get(key), key[1]
        if rb is None or ra["status"] != rb["status"]:
            worst[metric] = (float("inf"), float("inf"))
            continue
        if ra["value"] is not None:
            note(metric, ra["value"], rb["value"])
        for p, v in (ra.get("per_person") or {}).items():
            if v is not None and (rb.get("per_person") or {}).get(p) is not None:
                note(metric, v, rb["per_person"][p])
        if ra.get("stats") and rb.get("stats"):
            with np.load(out_a / ra["stats"]) as za, np.load(out_b / rb["stats"]) as zb:
                for n in za.files:
                    note(metric, za[n], zb[n])
    return worst


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/interactive_eyes", help="InteractiveEyes data root (clip 11's video and audio)")
    ap.add_argument("--device", default="cuda", help="cuda or cpu")
    ap.add_argument("--clips", type=int, default=29, help="number of clips (the benchmark has 29)")
    ap.add_argument("--metrics", default=None, help="comma-separated (default: every registered metric)")
    ap.add_argument("--workers", type=int, default=1, help="worker processes (then only the total is timed)")
    ap.add_argument("--devices", default=None, help="one worker per device, e.g. cuda:0,cuda:1 (total only)")
    ap.add_argument("--landmarks", default="mediapipe-tasks")
    ap.add_argument("--clips-in-flight", type=int, default=None,
                    help=f"clips scored at once per worker, their model calls batched together (default: "
                         f"{GPU_CLIPS_IN_FLIGHT} on cuda, 1 on cpu; 1 turns cross-clip batching off)")
    ap.add_argument("--max-wait-ms", type=float, default=None,
                    help="how long a model request waits for other clips' (metrics/batching.py's default)")
    ap.add_argument("--compare", action="store_true",
                    help="then score again one clip at a time and print the total and the largest per-clip "
                         "difference of each metric (batch composition changes float results in the last bits)")
    args = ap.parse_args(argv)
    in_flight = args.clips_in_flight or (GPU_CLIPS_IN_FLIGHT if args.device.startswith("cuda") else 1)

    import torch

    from interactive_eyes.app.engine import EngineOptions, score
    from interactive_eyes.app.executors import make_executor, parse_devices
    from interactive_eyes.metrics import METRICS, batching
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
        if args.max_wait_ms is not None:
            batching.DEFAULT_MAX_WAIT = args.max_wait_ms / 1000
        executor = make_executor(workers=args.workers, devices=parse_devices(args.devices), clips_in_flight=in_flight)
        staged = args.workers == 1 and not args.devices
        if staged:
            instrument(names)
        batching.reset_stats()
        t = time.perf_counter()
        res = score(gen, benchmark=bench, data_root=data, out=tmp / "out", metrics=names, options=options,
                    executor=executor, progress=False)
        total = time.perf_counter() - t
        net_stats = batching.stats()
        compared = None
        if args.compare and in_flight > 1:
            times, counts = dict(TIMES), dict(COUNTS)  # the sequential run adds to the timers: keep these
            seq = make_executor(workers=args.workers, devices=parse_devices(args.devices))
            t = time.perf_counter()
            score(gen, benchmark=bench, data_root=data, out=tmp / "seq", metrics=names, options=options,
                  executor=seq, progress=False)
            compared = (time.perf_counter() - t, differences(tmp / "seq", tmp / "out"))
            TIMES.clear()
            TIMES.update(times)
            COUNTS.clear()
            COUNTS.update(counts)

    gpu = torch.cuda.get_device_name(0) if args.device.startswith("cuda") and torch.cuda.is_available() else "none"
    print(f"full benchmark: {args.clips} clips x interact_11 ({n_frames} frames), device={args.device} (GPU: {gpu}), "
          f"torch threads={torch.get_num_threads()}, {executor.describe()}")
    print(f"random weights written in {t_weights:.1f} s (not counted)")
    print(f"plain decode pass (one process): {t_plain:7.2f} s  {n_frames / t_plain:8.1f} frames/s")
    if staged:
        print(f"{'stage':<44} {'seconds':>8} {'calls':>7}")
        for key in sorted(TIMES, key=lambda k: (not k.startswith("decode"), not k.startswith("face"), k)):
            print(f"{key:<44} {TIMES[key]:8.2f} {COUNTS[key]:7d}")
        if in_flight == 1:
            accounted = sum(TIMES.values())
            print(f"{'other (probe, hashing, checks, result files)':<44} {total - accounted:8.2f}")
    if in_flight > 1:
        print(f"(stage times summed over {in_flight} clip threads, batch wait "
              f"{batching.DEFAULT_MAX_WAIT * 1000:g} ms)")
    print(f"{'TOTAL score wall time':<44} {total:8.2f}   ({args.clips * 206 / total:.1f} frames/s)")
    if staged:
        print(f"{'network (this process)':<28} {'forward calls':>13} {'items':>8} {'requests':>8} {'mean batch':>10}")
        for name, s in sorted(net_stats.items()):
            print(f"{name:<28} {s['calls']:13d} {s['items']:8d} {s['requests']:8d} {s['mean_batch']:10.1f}")
    if compared is not None:
        print(f"{'sequential run (--clips-in-flight 1)':<44} {compared[0]:8.2f}")
        print("largest per-clip difference, batched vs sequential (values, per person, statistics):")
        for name, (d, r) in sorted(compared[1].items()):
            print(f"  {name:<14} max abs {d:.3g}   relative to the quantity's largest magnitude {r:.3g}")
    for name, m in res["metrics"].items():
        print(f"  {name:<14} n_ok={m['n_ok']}/{m['n_expected']}" + (f"  failures: {m['failures'][0]['reason'][:120]}"
                                                                     if m["failures"] else ""))
    for name, reason in res.get("skipped_metrics", {}).items():
        print(f"  {name:<14} skipped: {reason}")


if __name__ == "__main__":
    main()
