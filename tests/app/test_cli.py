"""The ie-bench command group: version, help without heavy imports, did-you-mean, env."""

from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner

from interactive_eyes import __version__
from interactive_eyes.app.cli import main


def test_version():
    r = CliRunner().invoke(main, ["--version"])
    assert r.exit_code == 0 and __version__ in r.output


def test_help_imports_nothing_heavy():
    code = (
        "import sys; from interactive_eyes.app.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'mediapipe', 'av', 'cv2', 'scipy', 'pandas') if m in sys.modules]\n"
        "print('HEAVY', heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out, out


def test_unknown_command_suggests():
    r = CliRunner().invoke(main, ["envv"])
    assert r.exit_code != 0 and "Did you mean 'env'" in r.output


def test_env_json(tmp_path):
    r = CliRunner().invoke(main, ["env", "--json", "--root", str(tmp_path)])
    assert r.exit_code == 0, r.output
    info = json.loads(r.output)
    assert info["ie_bench"] == __version__
    # whatever is installed (mediapipe only with the legacy extra; ai-edge-litert always), read
    # independently of ie-bench
    import importlib.metadata as md

    import numpy

    def installed(name):
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return None

    assert info["packages"]["mediapipe"] == installed("mediapipe")
    assert info["packages"]["ai-edge-litert"] == installed("ai-edge-litert") is not None
    assert info["packages"]["numpy"] == numpy.__version__
    assert info["paths"]["data_root"] == {"path": str(tmp_path), "exists": True}
    assert isinstance(info["cuda"]["available"], bool)
