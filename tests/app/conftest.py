from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def fake_metrics(monkeypatch):
    """Register the deterministic test metrics into the real registry for one test."""
    from interactive_eyes.metrics import METRICS

    import _fake_metrics as fm

    saved = (dict(METRICS._entries), dict(METRICS._loaded))
    for cls in (fm.MeanLuma, fm.LumaStats, fm.Broken, fm.LumaRef):
        if cls.name not in METRICS:
            METRICS.register(cls.name, f"_fake_metrics:{cls.__name__}")
    yield fm
    METRICS._entries, METRICS._loaded = saved


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
