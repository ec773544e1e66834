"""Frames per second of the Interactivity pipeline on one video (default: interact_11).

    python benchmarks/interactivity_speed.py [VIDEO] [--clip interact_11] [--repeats 3]

Prints, for one process: decoding alone (PyAV, RGB frames), the background camera-motion
estimate alone (``faces.camera``, part of the corrected metric), the face tracker alone on decoded
frames (MediaPipe, 478-point landmarks for every person), the corrected metric alone on recorded
tracks (camera estimate included), the whole pipeline as ``ie-bench interactivity`` runs it
(decode + tracker + metric, through the engine's ``analyze_clip``: tracking on demand since 3.1), and decoding in a background
thread overlapped with the tracker. Each figure is the median of ``--repeats`` runs after one
warm-up; the machine's CPU count and the process's CPU affinity are printed with them, since
MediaPipe and FFmpeg use their own threads, and so are the load average and frames per
CPU-second of the process (the per-core rate pinned to one core, much less disturbed by other
processes than wall-clock time). Last, the number of mesh model reads the whole pipeline makes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path


def _median_fps(fn, n_frames: int, repeats: int) -> tuple[float, float]:
    """(frames per wall-clock second, frames per CPU second of this process), medians of
    ``repeats`` runs. The CPU figure counts every thread of the process (MediaPipe's, FFmpeg's,
    the decode thread), so pinned to one core it is the per-core rate; on a busy machine it is
    far less disturbed than the wall-clock one (waiting for the core is not counted; cache and
    memory contention still are, so it stays a lower bound of the quiet figure)."""
    fn()  # warm-up: model loading, first-call allocations
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(n_frames / (time.perf_counter() - t0))
        cpu.append(n_frames / max(time.process_time() - c0, 1e-9))
    return statistics.median(wall), statistics.median(cpu)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(os.environ.get("IE_BENCH_TEST_DATA", "../shared/data")) / "interactive_eyes" / "interact_11.mp4"
    ap.add_argument("video", nargs="?", default=str(default))
    ap.add_argument("--clip", default="interact_11")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)

    from interactive_eyes.app.cmd_interactivity import score_video
    from interactive_eyes.data.manifest import load
    from interactive_eyes.faces.track import FaceTracker
    from interactive_eyes.media.video import iter_frames, probe, read_frames

    info = probe(args.video)
    clip = load().clip(args.clip)
    n = info.n_frames
    frames, _ = read_frames(args.video)

    def decode():
        for _ in iter_frames(args.video):
            pass

    def track():
        with FaceTracker(clip.n_people) as tr:
            for f in frames:
                tr.update(f)

    def track_held():
        with FaceTracker(clip.n_people, roi_follow="hold") as tr:
            for f in frames:
                tr.update(f)

    def camera():
        from interactive_eyes.faces.camera import CameraMotion

        cam = CameraMotion()
        with FaceTracker(clip.n_people, landmarks=None) as tr:
            boxes = tr.update(frames[0])[0]
        for f in frames:
            cam.update(f, boxes)

    def metric_only():
        """The corrected metric alone (camera estimate, blank-crop test, buffering and the arithmetic)
        on tracks recorded once, through the same FrameData the engine builds."""
        from interactive_eyes.metrics.base import ClipContext, FrameData
        from interactive_eyes.metrics.interactivity import Interactivity

        m = Interactivity()
        state = m.start(ClipContext(clip=clip, video_path=Path(args.video), info=info))
        for k, (f, (faces, lms)) in enumerate(zip(frames, tracks)):
            m.update(state, FrameData(index=k, time=k / info.fps, rgb=f, faces=faces, landmarks=lms,
                                      landmark_backend="mediapipe-tasks"))
        m.finish(state)

    with FaceTracker(clip.n_people) as tr:
        tracks = [tr.update(f) for f in frames]

    if abs(info.duration - clip.duration) > 1.0 / info.fps:
        # the engine's per-clip contract refuses a video whose duration differs from the clip's by more
        # than a frame (interact_11.mp4 is 8.542 s for a clip of 8.597 s): score it as a clip of its own length
        import dataclasses

        clip = dataclasses.replace(clip, duration=info.duration)

    def pipeline():
        res = score_video(args.video, clip)
        if res.status != "ok":
            raise SystemExit(f"{args.video}: {res.reason}")

    def prefetched():
        """Decode in a background thread (PyAV releases the GIL) while the tracker works: what the
        engine's loop would gain from a one-frame-ahead reader."""
        import queue
        import threading

        q: queue.Queue = queue.Queue(maxsize=8)

        def reader():
            for f in iter_frames(args.video):
                q.put(f)
            q.put(None)

        threading.Thread(target=reader, daemon=True).start()
        with FaceTracker(clip.n_people) as tr:
            while (f := q.get()) is not None:
                tr.update(f.rgb, f.time)

    cpus = os.cpu_count()
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cpus
    print(f"video: {args.video} ({info.width}x{info.height}, {info.fps:g} fps, {n} frames, {clip.n_people} people)")
    print(f"cpus: {cpus}, usable by this process: {affinity}; python {sys.version.split()[0]}")
    rows = [("decode (PyAV, rgb24)", decode), ("camera motion (faces.camera)", camera),
            ("face tracker + 478-pt landmarks", track), ("  the same, held ROIs (version 1)", track_held),
            ("metric alone (camera included)", metric_only),
            ("whole interactivity pipeline", pipeline), ("decode thread + tracker", prefetched)]
    if hasattr(os, "getloadavg"):
        print("load average (1, 5, 15 min): " + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    for label, fn in rows:
        fps, cpu_fps = _median_fps(fn, n, args.repeats)
        print(f"{label:34s} {fps:8.1f} frames/s  ({fps / affinity:6.1f} per usable core)  "
              f"{cpu_fps:8.1f} frames per CPU-second")
    # the mesh model's reads, the bulk of the time: a count that does not move with the machine's load
    from interactive_eyes.faces import mediapipe_tasks

    reads = [0]
    run = mediapipe_tasks.TaskRoiLandmarker.run

    def counted(self, *a, **kw):
        reads[0] += 1
        return run(self, *a, **kw)

    mediapipe_tasks.TaskRoiLandmarker.run = counted
    try:
        pipeline()
    finally:
        mediapipe_tasks.TaskRoiLandmarker.run = run
    print(f"mesh model reads in the whole pipeline: {reads[0]} ({reads[0] / n:.2f} per frame)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
