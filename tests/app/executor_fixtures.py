"""Fixtures shared by the executor tests (local pool, ``--devices``, Ray): four one-second clips
of known brightness, their manifest, and the executor probe metrics registered for one test.

Imported by name into the test modules that use them (a plain module, not a conftest)."""

from __future__ import annotations

import pytest
from app_helpers import write_clip, write_manifest


@pytest.fixture
def gen(tmp_path):
    d = tmp_path / "gen"
    d.mkdir()
    for i in range(4):
        write_clip(d / f"c{i}.mp4", value=30 * i + 10)
    return d


@pytest.fixture
def manifest(tmp_path):
    return write_manifest(tmp_path / "m.json", 4)


@pytest.fixture
def metrics(fake_metrics):
    import _executor_metrics

    from interactive_eyes.metrics import METRICS

    _executor_metrics.register(METRICS)
    return METRICS
