"""``ie-bench demo``: the whole job, offline, on a tiny benchmark built from a public-domain photo.

Two clips, two people each. The people are scikit-image's ``astronaut`` photo (public domain,
NASA) and a mirrored, colour-shifted copy of it side by side. Each person gets a synthetic
speech-like track (a voiced harmonic source with a syllable-rate envelope and a drifting pitch)
during their own turns and low noise otherwise; the turns are written into a manifest of the
ordinary schema, so everything downstream is the real code path: ``run`` for the built-in
``static`` and ``puppet`` methods, ``score`` with every metric whose requirements are met
offline, and the leaderboard as CSV, Markdown and PNG.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

DEMO_RATE = 16000
# (duration, turns) per clip; turns alternate left/right: (person index, start, end) in seconds
DEMO_CLIPS = {
    "demo_1": (5.0, [(0, 0.0, 2.4), (1, 2.6, 5.0)]),
    "demo_2": (4.0, [(1, 0.0, 1.8), (0, 2.0, 4.0)]),
}
FRAME_SIZE = (416, 832)  # (height, width) of the two-person reference frame (AnyTalker's 832 width)
# Head-and-shoulders crop of the astronaut photo (rows, cols): the face must fill enough of the
# frame for MediaPipe's short-range face detector, which reads the whole frame at 128x128.
ASTRONAUT_CROP = (slice(0, 320), slice(60, 380))


def speech_like(duration: float, segments: list[tuple[float, float]], *, seed: int, rate: int = DEMO_RATE) -> np.ndarray:
    """A voiced, syllable-modulated signal inside ``segments`` and -60 dBFS noise elsewhere."""
    rng = np.random.default_rng(seed)
    n = int(round(duration * rate))
    t = np.arange(n) / rate
    out = rng.normal(0, 0.001, n)  # the quiet floor of a close-talk microphone
    for s, e in segments:
        i0, i1 = int(s * rate), min(n, int(e * rate))
        tt = t[i0:i1] - s
        f0 = 120 + 25 * np.sin(2 * np.pi * 0.7 * tt + rng.uniform(0, 6)) + rng.uniform(-10, 30)
        phase = 2 * np.pi * np.cumsum(f0) / rate
        voiced = sum((0.6 / k) * np.sin(k * phase) for k in range(1, 9))
        syll = 0.5 * (1 - np.cos(2 * np.pi * rng.uniform(3.5, 5.0) * tt))  # ~4 syllables per second
        ramp = np.clip(np.minimum(tt, (e - s) - tt) / 0.05, 0, 1)
        out[i0:i1] += 0.25 * voiced * syll * ramp + rng.normal(0, 0.01, i1 - i0) * syll
    return np.clip(out, -1, 1).astype(np.float32)


def reference_frame() -> np.ndarray:
    """Two people side by side: the astronaut and a mirrored, colour-shifted copy."""
    import cv2
    from skimage import data

    face = data.astronaut()[ASTRONAUT_CROP]  # 512x512 RGB, public domain (NASA)
    other = face[:, ::-1].astype(np.int16)
    other = np.clip(other * np.array([0.85, 1.0, 1.15]) + np.array([0, 10, 20]), 0, 255).astype(np.uint8)
    both = np.concatenate([face, other], axis=1)
    h, w = FRAME_SIZE
    return cv2.resize(both, (w, h), interpolation=cv2.INTER_AREA)


def build_demo_benchmark(folder: str | Path) -> Path:
    """Write ``manifest.json``, ``data/audio_*/...wav`` and ``frames/<clip>.png``; returns the manifest path."""
    import cv2

    from interactive_eyes.data.manifest import complement, parse
    from interactive_eyes.media.audio import pcm_sha256, write_wav

    folder = Path(folder)
    data_root = folder / "data"
    frames = folder / "frames"
    frames.mkdir(parents=True, exist_ok=True)
    ref = reference_frame()
    clips = []
    for ci, (cid, (duration, turns)) in enumerate(DEMO_CLIPS.items()):
        people = []
        for k, role in enumerate(("left", "right")):
            segs = [(s, e) for who, s, e in turns if who == k]
            rel = f"audio_{role}/{cid}_{role}.wav"
            write_wav(data_root / rel, speech_like(duration, segs, seed=100 * ci + k), DEMO_RATE)
            digest, info = pcm_sha256(data_root / rel)
            people.append({
                "role": role, "audio": rel, "pcm_sha256": digest, "sample_rate": info.sample_rate,
                "channels": info.channels, "speaking": [list(s) for s in segs],
                "listening": [list(s) for s in complement(segs, duration)],
            })
        cv2.imwrite(str(frames / f"{cid}.png"), cv2.cvtColor(ref, cv2.COLOR_RGB2BGR))
        clips.append({"id": cid, "duration": duration, "prompt": "Two astronauts talking to each other.",
                      "prompt_is_generic": True, "people": people})
    manifest = {"schema": "ie-bench/manifest", "schema_version": 1, "name": "ie_bench_demo", "version": "1",
                "description": "ie-bench offline demo: two synthetic two-person clips", "clips": clips}
    parse(manifest)  # the demo must itself be a valid manifest
    path = folder / "manifest.json"
    path.write_text(json.dumps(manifest, indent=1) + "\n")
    return path


def run_demo(folder: str | Path, *, methods: tuple[str, ...] = ("static", "puppet"), metrics: list[str] | None = None,
             echo=print, progress: bool = False, offline: bool = True) -> dict:
    """Build the demo benchmark, generate with each method, score, and write the leaderboard.

    ``exit_code`` of the result: the worst of the score runs' (0 ok, 1 a clip failed or a
    requested metric was skipped)."""
    from interactive_eyes.app.cmd_common import offline_mode

    t0 = time.perf_counter()
    folder = Path(folder)
    # The demo is offline by default: model-based metrics whose weights are already cached
    # run, the others are listed as skipped instead of attempting a download.
    with offline_mode(offline):
        return _run_demo(folder, t0, methods, metrics, echo, progress)


def _run_demo(folder: Path, t0: float, methods, metrics, echo, progress) -> dict:
    from interactive_eyes.app.engine import score
    from interactive_eyes.app.leaderboard import build_table, load_results, plot, to_csv, to_markdown
    from interactive_eyes.app.run import run_method
    from interactive_eyes.data.manifest import load

    manifest_path = build_demo_benchmark(folder)
    bench = load(manifest_path)
    echo(f"demo benchmark: {len(bench)} clips, 2 people each -> {folder}")
    results_paths = []
    timings = {}
    exit_code = 0
    for method in methods:
        t = time.perf_counter()
        out_dir = folder / "generated" / method
        run_method(method, benchmark=bench, out_dir=out_dir, reference_frames=folder / "frames",
                   data_root=folder / "data", progress=progress)
        t_gen = time.perf_counter() - t
        res = score(out_dir, benchmark=bench, data_root=folder / "data", metrics=metrics, progress=progress)
        timings[method] = {"generate_s": round(t_gen, 2), "score_s": round(time.perf_counter() - t - t_gen, 2)}
        echo(f"{method}: generated in {t_gen:.1f} s, scored in {timings[method]['score_s']:.1f} s")
        for name, reason in res["skipped_metrics"].items():
            echo(f"  skipped {name}: {reason}")
        for problem in res["problems"]:
            echo(f"  problem: {problem}")
        exit_code = max(exit_code, res["exit_code"])
        results_paths.append(out_dir / "ie-bench" / "results.json")
    df = build_table(load_results(results_paths))
    board = folder / "leaderboard"
    board.mkdir(exist_ok=True)
    to_csv(df, board / "leaderboard.csv")
    md = to_markdown(df)
    (board / "leaderboard.md").write_text(md)
    plot(df, board / "leaderboard.png")
    total = time.perf_counter() - t0
    echo("")
    echo(md.rstrip())
    echo("")
    echo(f"leaderboard: {board}/leaderboard.{{csv,md,png}}  (total {total:.1f} s)")
    return {"folder": str(folder), "leaderboard": str(board), "timings": timings, "total_s": total,
            "results": [str(p) for p in results_paths], "exit_code": exit_code}
