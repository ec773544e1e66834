from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def fake_metrics(monkeypatch):
    """Register the deterministic test metrics into the real registry for one test."""
    from interactive_eyes.metrics import METRICS

    import _fake_metrics as fm

    saved = (dict(METRICS._entries), dict(METRICS._loaded))
    for cls in (fm.MeanLuma, fm.LumaStats, fm.Broken, fm.LumaRef, fm.CorruptModel, fm.CorruptInit, fm.OfflineProbe,
                fm.SlowLuma, fm.NanLuma):
        if cls.name not in METRICS:
            METRICS.register(cls.name, f"_fake_metrics:{cls.__name__}")
    yield fm
    METRICS._entries, METRICS._loaded = saved
