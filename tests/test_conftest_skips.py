"""The conftest rule "with IE_BENCH_TEST_DATA set, a skip is a failure (except @pytest.mark.cuda)",
run on a small throw-away suite in a subprocess with a copy of the real tests/conftest.py."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

SUITE = '''
import pytest

def test_passes():
    assert True

def test_skips():
    pytest.skip("a missing golden folder")

@pytest.mark.skipif(True, reason="a missing package")
def test_skipif():
    pass

@pytest.mark.cuda
def test_needs_gpu():
    import torch
    assert torch.cuda.is_available()

@pytest.mark.xfail(reason="known", strict=True)
def test_xfails():
    assert False

def test_uses_data(test_data):
    assert test_data.is_dir()
'''

MODULE_SKIP = '''
import pytest
pytest.importorskip("a_package_nobody_has")

def test_never_collected():
    pass
'''


def _run(tmp_path: Path, data: Path | None) -> tuple[int, dict[str, str], str]:
    suite = tmp_path / "suite"
    suite.mkdir(exist_ok=True)
    shutil.copy(Path(__file__).with_name("conftest.py"), suite / "conftest.py")
    (suite / "test_suite.py").write_text(SUITE)
    (suite / "test_module_skip.py").write_text(MODULE_SKIP)
    env = {k: v for k, v in os.environ.items() if k != "IE_BENCH_TEST_DATA"}
    env["CUDA_VISIBLE_DEVICES"] = ""  # no GPU for the subprocess, whatever this machine has
    if data is not None:
        env["IE_BENCH_TEST_DATA"] = str(data)
    # --continue-on-collection-errors: the module skip (a collection error) and the rest in one run
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", "-q",
                        "--continue-on-collection-errors", "--rootdir",
                        str(suite), "-c", os.devnull, str(suite)], capture_output=True, text=True, env=env,
                       cwd=suite, timeout=120)
    outcomes = {}
    for line in r.stdout.splitlines():
        m = re.match(r"(PASSED|FAILED|XFAIL|ERROR)\s+(\S+)", line)
        if m:
            outcomes[m.group(2).split("::")[-1].split(":")[0]] = m.group(1)
    return r.returncode, outcomes, r.stdout


def test_skips_fail_when_test_data_is_set_except_cuda(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    code, outcomes, out = _run(tmp_path, data)
    assert code == 1, out
    assert outcomes["test_passes"] == "PASSED" and outcomes["test_uses_data"] == "PASSED"
    assert outcomes["test_skips"] == "FAILED"
    assert outcomes["test_skipif"] == "ERROR"  # skipif acts in the setup phase: a failed setup is an error
    assert "skipped although IE_BENCH_TEST_DATA is set (a missing golden folder)" in out
    assert "skipped although IE_BENCH_TEST_DATA is set (a missing package)" in out
    assert outcomes["test_module_skip.py"] == "ERROR"  # a module-level importorskip is a collection error
    assert "module skipped although IE_BENCH_TEST_DATA is set (could not import 'a_package_nobody_has'" in out
    # the one allowed skip, reported at the test's own line and listed in the summary
    assert re.search(r"SKIPPED \[1\] test_suite.py:\d+: needs a CUDA device \(none here\)", out)
    assert "1 test(s) marked cuda skipped (no CUDA device here): test_suite.py::test_needs_gpu" in out
    assert outcomes["test_xfails"] == "XFAIL"  # xfail is not a skip


def test_without_test_data_skips_stay_skips(tmp_path):
    code, outcomes, out = _run(tmp_path, None)
    assert code == 0, out
    assert outcomes == {"test_passes": "PASSED", "test_xfails": "XFAIL"}  # the rest are SKIPPED lines:
    for reason in ("a missing golden folder", "a missing package", "needs a CUDA device (none here)",
                   "IE_BENCH_TEST_DATA is not set", "could not import 'a_package_nobody_has'"):
        assert re.search(r"SKIPPED \[1\] test_\w+\.py(:\d+)?: " + re.escape(reason), out), (reason, out)
