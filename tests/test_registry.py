"""The lazy registry: no import until asked, did-you-mean on unknown names, bad entries refused."""

from __future__ import annotations

import subprocess
import sys

import pytest

from interactive_eyes.registry import Registry, UnknownNameError


def test_get_imports_lazily_and_caches():
    reg = Registry("thing", {"dec": "decimal:Decimal", "join": "os.path:join"})
    assert reg.names() == ["dec", "join"] and len(reg) == 2 and "dec" in reg and "nope" not in reg
    import decimal
    import os.path

    assert reg.get("dec") is decimal.Decimal
    assert reg["join"] is os.path.join
    assert reg.target("dec") == "decimal:Decimal"


def test_module_is_not_imported_until_get():
    code = (
        "import sys\n"
        "from interactive_eyes.registry import Registry\n"
        "r = Registry('t', {'x': 'fractions:Fraction'})\n"
        "r.names(); 'x' in r; r.target('x')\n"
        "before = 'fractions' in sys.modules\n"
        "r.get('x')\n"
        "print(before, 'fractions' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]


def test_unknown_name_suggests_close_match():
    reg = Registry("method", {"static": "decimal:Decimal", "puppet": "decimal:Decimal"})
    with pytest.raises(UnknownNameError) as err:
        reg.get("statc")
    assert isinstance(err.value, KeyError)
    assert str(err.value) == "unknown method 'statc' (did you mean 'static'?)"
    with pytest.raises(KeyError) as err:
        reg.get("zzzzzz")
    assert str(err.value) == "unknown method 'zzzzzz' (known: puppet, static)"
    assert "\n" not in str(err.value)


def test_bad_entries_are_refused():
    reg = Registry("metric")
    with pytest.raises(ValueError, match="not 'module:Attr'"):
        reg.register("a", "no_colon")
    reg.register("b", "decimal:Decimal")
    with pytest.raises(ValueError, match="already registered"):
        reg.register("b", "decimal:Decimal")
    reg.register("c", "decimal:NoSuchThing")
    with pytest.raises(ImportError, match="metric 'c': decimal has no attribute 'NoSuchThing'"):
        reg.get("c")


def test_objects_can_be_registered_directly():
    class Dummy:
        pass

    reg = Registry("method")
    reg.register("dummy", Dummy)
    assert reg.get("dummy") is Dummy and reg.names() == ["dummy"]
    assert reg.target("dummy").endswith(":test_objects_can_be_registered_directly.<locals>.Dummy")
