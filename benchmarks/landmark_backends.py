"""The legacy (``mediapipe``) and Tasks (``mediapipe-tasks``) landmark backends on the Interactivity suite.

    taskset -c 0 python benchmarks/landmark_backends.py [--backends mediapipe,mediapipe-tasks] [--json FILE]
    python benchmarks/landmark_backends.py --dump a.npz    # in each environment, then
    python benchmarks/landmark_backends.py --compare a.npz b.npz

Needs IE_BENCH_TEST_DATA (the shared photos and clip 11) and, for ``mediapipe-tasks``,
``face_landmarker.task`` (``$IE_BENCH_WEIGHT_FACE_LANDMARKER`` or the weights cache). The legacy
backend needs mediapipe==0.10.21 (numpy < 2); under numpy 2 run ``--backends mediapipe-tasks``.

What it prints (docs/landmark_backends.md holds the figures and the decision):

1. **Known rigid head motion**, per face and amplitude: a face of a shared photo scaled to ~150
   px, its head moving by a 2-D sinusoid of A px (A in x, A/2 in y) over the still scene, 40
   frames at 25 fps; the same construction as ``tests/metrics/test_interactivity_faces.py``
   (``_case``), so the truth is known exactly. Ratio = corrected Interactivity / (true mean head
   displacement x the person's scale). Every backend sees the same frames: the face is placed
   from one detection made with the Tasks models (they run in every environment).
2. **A +-1 px sub-pixel camera shake** on the 2 px case, compensated: change against the
   unshaken value (target < 10 %).
3. **Still-frame noise floor**: the same face with no motion at all (value must be 0: a still
   face is read through the same crop), and with fresh Gaussian sensor noise (sigma 1 grey level)
   on every frame: what pure pixel noise reads as motion, in Interactivity units.
4. **Occlusion**: grey over the whole face for 1, 3 and 6 frames of the 2 px astronaut case:
   change against the unoccluded value (target < 5 %).
5. **Clip 11** (interact_11.mp4): corrected Interactivity per person, and with the +-1 px
   integer shake of tests/metrics/test_interactivity.py (seed 0, reflected border).
6. **Speed**: ms per face of each ROI mesh model (one ``locate`` call on clip 11's faces, the
   crop included) and the tracker's frames/s on clip 11 (two people, landmarks on), medians of 3
   runs after a warm-up, in wall-clock and in process CPU time. Pin it with ``taskset -c 0`` for
   one core's figures (``--only speed`` runs that part alone).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

FPS, N, FACE_PX = 25.0, 40, 150.0
FACES = [("astronaut", 0), ("2p-0.png", 0), ("2p-0.png", 1), ("2p-1.png", 0), ("2p-3.png", 0), ("2p-2.png", 0),
         ("1p-0.png", 0)]
AMPLITUDES = (1.0, 2.0, 4.0)
GAPS = (1, 3, 6)


def _data() -> Path:
    root = os.environ.get("IE_BENCH_TEST_DATA")
    if not root:
        raise SystemExit("set IE_BENCH_TEST_DATA to the shared data folder (../shared/data)")
    return Path(root)


def _photo(name):
    from interactive_eyes.faces.synthetic import astronaut

    if name == "astronaut":
        return astronaut()
    from PIL import Image

    return np.asarray(Image.open(_data() / "anytalker_examples" / "images" / name).convert("RGB"))


def _placement(name, which):
    """(photo, face box) of face ``which`` from the left, found by the Tasks models; None if none.
    The photo's other faces are painted over with its median colour (their box enlarged 1.4x): a
    second face in the 640x480 frame would be bound instead of the moving one (one-person clip)."""
    from interactive_eyes.faces.track import FaceTracker

    img = _photo(name).copy()
    n = 2 if name.startswith("2p") else 1
    with FaceTracker(n, landmarks=None, mesh="tasks") as tr:
        boxes = sorted((b for b in tr.update(img)[0] if b is not None), key=lambda b: b.center[0])
    if len(boxes) <= which:
        return None
    import cv2

    fill = np.median(img.reshape(-1, 3), axis=0).astype(np.uint8)
    for k, b in enumerate(boxes):
        if k != which:
            (cx, cy), half = b.center, 0.7 * b.side
            img[max(0, int(cy - half)):int(cy + half), max(0, int(cx - half)):int(cx + half)] = fill
    # and the photo's edges continue as streaks, not mirrored: Shot.render reflects the photo at
    # its border, which puts a still mirror image of a face near the edge (2p-0's right face)
    # into the frame, and the one-person tracker may bind that one
    pad = max(img.shape[:2])
    img = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    return img, boxes[which].shifted(pad, pad)


def _case(img, box, amplitude, shake, seed=0, still_noise=0.0):
    """40 frames of the face moving by the known sinusoid (see the module docstring); returns the
    frames and the true mean head displacement (px/frame)."""
    from interactive_eyes.faces.synthetic import Pose, Shot, render_head_motion

    zoom = FACE_PX / box.side
    shot = Shot(img, face_center=box.center, zoom=zoom, size=(640, 480))
    rng = np.random.default_rng(seed)
    head = [Pose(amplitude * np.sin(2 * np.pi * k / 10), 0.5 * amplitude * np.cos(2 * np.pi * k / 7)) for k in range(N)]
    cam = [Pose(*rng.uniform(-shake, shake, 2)) if shake else Pose() for _ in range(N)]
    frames = [render_head_motion(shot, c, h, radius=1.1 * FACE_PX) for c, h in zip(cam, head)]
    if still_noise:
        noise = np.random.default_rng(seed + 1)
        frames = [np.clip(f + noise.normal(0.0, still_noise, f.shape) + 0.5, 0, 255).astype(np.uint8) for f in frames]
    hx = np.array([[h.tx, h.ty] for h in head])
    return frames, float(np.mean(np.linalg.norm(np.diff(hx, axis=0), axis=1)))


def _track(frames, backend, n_people=1):
    from interactive_eyes.faces.track import FaceTracker

    with FaceTracker(n_people, landmarks=backend) as tr:
        out = [tr.update(f) for f in frames]
        return out, tr.summary()


def _score(frames, out, backend, clip=None, fps=FPS, times=None, camera=True):
    from interactive_eyes.data.manifest import Clip, Person
    from interactive_eyes.media.video import VideoInfo
    from interactive_eyes.metrics import interactivity as ia
    from interactive_eyes.metrics.base import ClipContext, FrameData

    n = len(frames)
    if clip is None:
        clip = Clip(id="s", duration=n / fps, people=(Person(role="p", audio="p.wav", speaking=(),
                                                             listening=((0.0, n / fps),)),))
    h, w = frames[0].shape[:2]
    info = VideoInfo(path="s.mp4", width=w, height=h, fps=fps, n_frames=n, duration=n / fps, has_audio=False,
                     audio_rate=None, audio_duration=None, codec="h264")
    m = ia.Interactivity(camera=camera)
    st = m.start(ClipContext(clip=clip, video_path="s.mp4", info=info))
    for k, (f, (b, lm)) in enumerate(zip(frames, out)):
        t = k / fps if times is None else float(times[k])
        m.update(st, FrameData(index=k, time=t, rgb=f, faces=b, landmarks=lm, landmark_backend=backend))
    return m.finish(st)


def faces_table(backends) -> list[dict]:
    rows = []
    for name, which in FACES:
        label = f"{name} {'left' if which == 0 else 'right'}" if name.startswith("2p") else name
        placed = _placement(name, which)
        if placed is None:
            rows.append({"face": label, "found": False})
            continue
        img, box = placed
        row = {"face": label, "found": True}
        for a in AMPLITUDES:
            frames, true_px = _case(img, box, a, 0.0)
            for b in backends:
                out, summary = _track(frames, b)
                res = _score(frames, out, b)
                if res.status != "ok":
                    row[f"{b} A={a:g}"] = f"failed: {res.reason}"
                    continue
                truth = true_px * res.details["per_person"]["p"]["scale"]
                row[f"{b} A={a:g}"] = round(res.value / truth, 3)
                if a == 2.0:
                    shaken, _ = _case(img, box, a, 1.0)
                    sres = _score(shaken, _track(shaken, b)[0], b)
                    row[f"{b} shake"] = round(sres.value / res.value - 1.0, 4) if sres.status == "ok" else None
        still, _ = _case(img, box, 0.0, 0.0)
        noisy, _ = _case(img, box, 0.0, 0.0, still_noise=1.0)
        for b in backends:
            r0 = _score(still, _track(still, b)[0], b)
            r1 = _score(noisy, _track(noisy, b)[0], b)
            row[f"{b} still"] = r0.value if r0.status == "ok" else None
            row[f"{b} noise"] = round(r1.value, 4) if r1.status == "ok" else None
        rows.append(row)
    return rows


def occlusion_table(backends) -> list[dict]:
    img, box = _placement("astronaut", 0)
    frames, _ = _case(img, box, 2.0, 0.0)
    rows = []
    for b in backends:
        ref = _score(frames, _track(frames, b)[0], b)
        row = {"backend": b, "reference": round(ref.value, 4)}
        for gap in GAPS:
            occluded = [f.copy() for f in frames]
            for k in range(20, 20 + gap):
                occluded[k][120:360, 200:440] = 128  # the whole face region, as in the tests
            res = _score(occluded, _track(occluded, b)[0], b)
            row[f"gap {gap}"] = round(res.value / ref.value - 1.0, 4) if res.status == "ok" else res.reason
        rows.append(row)
    return rows


def clip11_table(backends) -> tuple[list[dict], object, np.ndarray]:
    import cv2

    from interactive_eyes.data.manifest import load
    from interactive_eyes.media.video import probe, read_frames

    video = _data() / "interactive_eyes" / "interact_11.mp4"
    frames, times = read_frames(video)
    fps = probe(video).fps
    clip = load().clip("interact_11")
    h, w = frames.shape[1:3]
    shake = np.random.default_rng(0).integers(-1, 2, size=(len(frames), 2)).astype(np.float32)
    shaken = np.stack([cv2.warpAffine(f, np.float32([[1, 0, dx], [0, 1, dy]]), (w, h),
                                      borderMode=cv2.BORDER_REFLECT_101) for f, (dx, dy) in zip(frames, shake)])
    rows = []
    for b in backends:
        out, summary = _track(frames, b, 2)
        res = _score(frames, out, b, clip=clip, fps=fps, times=times)
        sh = _score(shaken, _track(shaken, b, 2)[0], b, clip=clip, fps=fps, times=times)
        rows.append({"backend": b, "value": round(res.value, 4),
                     **{k: round(v, 4) for k, v in res.per_person.items()},
                     "shaken": round(sh.value, 4), "shake change": round(sh.value / res.value - 1.0, 4),
                     "roi moves": list(summary.n_roi_moves), "missing": list(summary.n_missing)})
    return rows, clip, frames


def speed_table(backends, frames, repeats=3) -> list[dict]:
    """Per backend: ms per face of the ROI mesh model (crop included) and the tracker's frames/s
    on clip 11, medians of ``repeats`` runs after a warm-up, both in wall-clock time and in CPU
    time of the whole process (every thread: MediaPipe's graph runs its own). Pinned to one core,
    the CPU figures are the per-core cost and are far less disturbed by other processes."""
    from interactive_eyes.faces.track import FaceTracker

    def timed(fn):
        wall, cpu = [], []
        for _ in range(repeats + 1):
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        return statistics.median(wall[1:]), statistics.median(cpu[1:])

    rows = []
    for b in backends:
        with FaceTracker(2, landmarks=b) as tr:
            tr.update(frames[0])
            rois = [p.roi for p in tr._people]  # each person's ROI as the tracker placed it
            lm = tr._landmarker
            calls = [(f, r) for f in frames[:60] for r in rois if r is not None]

            def faces():
                for f, r in calls:
                    lm.locate(f, r)

            w_face, c_face = timed(faces)

        def track():
            with FaceTracker(2, landmarks=b) as tr:
                for f in frames:
                    tr.update(f)

        w_trk, c_trk = timed(track)
        rows.append({"backend": b, "ms per face, wall": round(w_face / len(calls) * 1e3, 2),
                     "ms per face, cpu": round(c_face / len(calls) * 1e3, 2),
                     "tracker frames/s, wall": round(len(frames) / w_trk, 1),
                     "tracker frames per cpu-s": round(len(frames) / c_trk, 1)})
    return rows


def dump_landmarks(path) -> None:
    """The Tasks backend's tracker landmarks on 2p-0.png (both people) and the astronaut, to an
    .npz: run it in two environments and ``--compare`` the files (the same frames must give the
    same landmarks under numpy 1 and 2)."""
    from interactive_eyes.faces.track import FaceTracker

    out = {}
    for name, n in (("2p-0.png", 2), ("astronaut", 1)):
        with FaceTracker(n, landmarks="mediapipe-tasks") as tr:
            out[name] = np.stack(tr.update(_photo(name))[1])
    np.savez(path, numpy=np.__version__, **out)


def compare_dumps(a, b) -> None:
    x, y = np.load(a), np.load(b)
    print(f"{a} (numpy {x['numpy']}) vs {b} (numpy {y['numpy']})")
    for k in x.files:
        if k != "numpy":
            print(f"  {k}: {x[k].shape}, max abs diff {np.abs(x[k] - y[k]).max():.3g} px")


def _print(title, rows):
    print(f"\n## {title}\n")
    keys = list(dict.fromkeys(k for r in rows for k in r))
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(str(r.get(k, "")) for k in keys) + " |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backends", default="mediapipe,mediapipe-tasks")
    ap.add_argument("--only", default="faces,occlusion,clip11,speed")
    ap.add_argument("--json", help="also write every figure to this JSON file")
    ap.add_argument("--dump", metavar="NPZ", help="only write the Tasks landmarks on two photos to NPZ")
    ap.add_argument("--compare", nargs=2, metavar="NPZ", help="only compare two --dump files")
    args = ap.parse_args(argv)
    if args.compare:
        compare_dumps(*args.compare)
        return 0
    if args.dump:
        dump_landmarks(args.dump)
        return 0
    from interactive_eyes.faces.landmarks import canonical_name
    from interactive_eyes.faces.mediapipe_tasks import load_bundle

    backends = [canonical_name(b) for b in args.backends.split(",") if b]
    parts = set(args.only.split(","))
    bundle = load_bundle()
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, cpus usable {affinity} of {os.cpu_count()}, "
          f"load {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"face_landmarker.task: {bundle.path} sha256 {bundle.sha256}; litert {bundle.describe()['litert']}")
    out: dict = {}
    if "faces" in parts:
        out["faces"] = faces_table(backends)
        _print("Known head motion: measured / true; shake: compensated change; still / noise: value (units)",
               out["faces"])
    if "occlusion" in parts:
        out["occlusion"] = occlusion_table(backends)
        _print("Occlusion (astronaut, 2 px): change vs unoccluded", out["occlusion"])
    frames = None
    if parts & {"clip11", "speed"}:
        rows, _, frames = clip11_table(backends) if "clip11" in parts else (None, None, None)
        if rows:
            out["clip11"] = rows
            _print("Clip 11: corrected Interactivity, +-1 px integer shake", rows)
    if "speed" in parts:
        if frames is None:
            from interactive_eyes.media.video import read_frames

            frames, _ = read_frames(_data() / "interactive_eyes" / "interact_11.mp4")
        out["speed"] = speed_table(backends, frames)
        _print("Speed", out["speed"])
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
