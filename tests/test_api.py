"""The top-level Python API: lazy names that are exactly the library functions the CLI calls."""

import subprocess
import sys

import pytest


def test_api_names_are_the_library_functions():
    import interactive_eyes
    from interactive_eyes.app import engine, run
    from interactive_eyes.data import manifest

    assert interactive_eyes.score is engine.score
    assert interactive_eyes.EngineOptions is engine.EngineOptions
    assert interactive_eyes.run_method is run.run_method
    assert interactive_eyes.load_manifest is manifest.load
    assert {"score", "run_method", "load_manifest", "EngineOptions"} <= set(dir(interactive_eyes))


def test_unknown_name_is_an_attribute_error():
    import interactive_eyes

    with pytest.raises(AttributeError, match="no_such_thing"):
        interactive_eyes.no_such_thing  # noqa: B018


def test_import_is_light():
    """`import interactive_eyes` must not pull torch, PyAV or mediapipe (the CLI's --help relies on it)."""
    code = ("import sys, interactive_eyes; heavy = [m for m in ('torch', 'av', 'mediapipe', 'cv2') "
            "if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_load_manifest_shipped_benchmark():
    import interactive_eyes

    bench = interactive_eyes.load_manifest()
    assert len(bench.clips) == 29
