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


def manifest_dict(n_clips=3, duration=1.0, ids=None):
    """The raw manifest of ``small_manifest`` (for commands that take --manifest FILE)."""
    ids = ids or [f"c{i}" for i in range(n_clips)]
    return {"schema": "ie-bench/manifest", "schema_version": 1, "name": "tiny", "version": "0", "clips": [
        {"id": cid, "duration": duration,
         "people": [{"role": "left", "audio": f"audio_left/{cid}_left.wav", "speaking": [[0.0, duration / 2]]},
                    {"role": "right", "audio": f"audio_right/{cid}_right.wav", "speaking": []}]}
        for cid in ids]}


def write_manifest(path, n_clips=3, duration=1.0, ids=None):
    import json

    path.write_text(json.dumps(manifest_dict(n_clips, duration, ids)))
    return path


def flip_mid_stream(src, dst, n_bytes=2048):
    """A copy of ``src`` with ``n_bytes`` inverted in the middle of the file: the container and
    its sample table (moov) stay intact, so probing passes, but decoding fails part-way (measured:
    a 24-frame 48x64 noise clip stops after 11 frames)."""
    data = bytearray(open(src, "rb").read())
    i = len(data) // 2
    for k in range(i, min(len(data), i + n_bytes)):
        data[k] ^= 0xFF
    open(dst, "wb").write(bytes(data))
    return dst


def write_noise_clip(path, n=24, fps=12, seed=0, size=(48, 64)):
    from interactive_eyes.media.video import write_video

    rng = np.random.default_rng(seed)
    frames = [rng.integers(0, 255, (*size, 3), dtype=np.uint8) for _ in range(n)]
    a = (0.1 * np.sin(np.arange(int(n / fps * 16000)) / 10)).astype(np.float32)
    return write_video(path, frames, fps, audio=a, audio_rate=16000)
