"""methods.toml: per-method tables, --param overrides, one-line errors naming the file."""

from __future__ import annotations

import pytest

from interactive_eyes.baselines.method_config import ConfigError, default_path, load, merged_params
from interactive_eyes.baselines.multitalk import MultiTalkMethod


def test_default_location_and_missing_default_is_empty(tmp_path, monkeypatch):
    monkeypatch.setenv("IE_BENCH_HOME", str(tmp_path))
    assert default_path() == tmp_path / "methods.toml"
    assert load() == ({}, tmp_path / "methods.toml")
    with pytest.raises(ConfigError, match=r"nope.toml: method config file not found"):
        load(tmp_path / "nope.toml")


def test_table_then_param_overrides(tmp_path):
    p = tmp_path / "m.toml"
    p.write_text('[multitalk]\nrepo = "/r"\npython = "/p"\nweights = "/w"\nsample_steps = 8\n[sonic]\nrepo = "/s"\n')
    params, path = merged_params(MultiTalkMethod, {"weights": "/other"}, p)
    assert path == p and params == {"repo": "/r", "python": "/p", "weights": "/other", "sample_steps": 8}
    assert MultiTalkMethod(**params).params()["sample_steps"] == 8


def test_errors_are_one_line_and_name_the_file(tmp_path):
    p = tmp_path / "m.toml"
    p.write_text("[multitalk\n")
    with pytest.raises(ConfigError, match=r"m.toml: not valid TOML"):
        load(p)
    p.write_text("multitalk = 3\n")
    with pytest.raises(ConfigError, match=r"'multitalk' must be a table \(\[multitalk\]\), got a int"):
        load(p)
    p.write_text('[multitalk]\nweigths = "/w"\n')
    with pytest.raises(ConfigError, match=r"\[multitalk\] has unknown key 'weigths' \(known: .*weights"):
        merged_params(MultiTalkMethod, {}, p)
