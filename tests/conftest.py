"""Shared fixtures. Tests that need the real data find it through IE_BENCH_TEST_DATA."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def _test_data() -> Path | None:
    value = os.environ.get("IE_BENCH_TEST_DATA")
    # absolute: tests build data roots of symlinks into the shared data, and CI passes a relative path
    return Path(value).resolve() if value else None


@pytest.fixture(scope="session")
def test_data() -> Path:
    """The shared test data folder (``../shared/data`` in CI); skips when it is not configured."""
    root = _test_data()
    if root is None:
        pytest.skip("IE_BENCH_TEST_DATA is not set")
    if not root.is_dir():
        pytest.fail(f"IE_BENCH_TEST_DATA={root} does not exist")
    return root


@pytest.fixture(scope="session")
def ie_root(test_data) -> Path:
    """The InteractiveEyes data root in the shared data (FLAC copies of the released audio)."""
    return test_data / "interactive_eyes"


@pytest.fixture(scope="session")
def interact_11(ie_root) -> Path:
    return ie_root / "interact_11.mp4"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Never touch the user's ~/.cache from tests: each test session gets its own cache home."""
    if "IE_BENCH_HOME" not in os.environ:
        monkeypatch.setenv("IE_BENCH_HOME", str(tmp_path_factory.getbasetemp() / "ie-bench-home"))
