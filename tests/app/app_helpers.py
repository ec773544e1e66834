"""Synthetic manifests and clips for the application tests (imported by name: tests/app is on sys.path)."""

from __future__ import annotations

import numpy as np


def small_manifest(n_clips=3, duration=1.0, n_people=2):
    from interactive_eyes.data.manifest import parse

    roles = ["left", "right"] if n_people == 2 else [f"p{k}" for k in range(n_people)]
    clips = []
    for i in range(n_clips):
        clips.append({
            "id": f"c{i}",
            "duration": duration,
            "people": [{"role": r, "audio": f"audio_{r}/c{i}_{r}.wav", "speaking": [[0.0, duration / 2]] if k == 0 else []}
                       for k, r in enumerate(roles)],
        })
    return parse({"schema": "ie-bench/manifest", "schema_version": 1, "name": "tiny", "version": "0", "clips": clips})


def write_clip(path, n=12, fps=12, value=100, size=(48, 64), audio=True):
    from interactive_eyes.media.video import write_video

    h, w = size
    frames = [np.full((h, w, 3), (value + 3 * i) % 256, np.uint8) for i in range(n)]
    a = (0.1 * np.sin(np.arange(int(n / fps * 16000)) / 10)).astype(np.float32) if audio else None
    return write_video(path, frames, fps, audio=a, audio_rate=16000)
