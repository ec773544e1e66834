"""Where each foreign method's checkout, Python and weights live: data in a TOML file, not code.

The file is ``$IE_BENCH_HOME/methods.toml`` (``ie-bench run --method-config FILE`` names
another one), one table per method, keys as the adapter's parameters::

    [multitalk]
    repo = "/opt/baselines/MultiTalk"            # checkout at the pinned commit
    python = "/opt/baselines/MultiTalk/.venv/bin/python"
    weights = "/data/weights/multitalk"          # the folder layout the adapter documents
    sample_steps = 40                            # any other parameter of the adapter

``--param repo=... python=... weights=...`` overrides the file. A method whose required keys are
missing (or point at nothing) fails before any clip with the exact keys to set.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

FILE_NAME = "methods.toml"


class ConfigError(RuntimeError):
    """The config file is unreadable or a method is not configured; one line (an environment error)."""


def default_path() -> Path:
    from interactive_eyes.data.paths import cache_home

    return cache_home() / FILE_NAME


def _toml():
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10 (setup.cfg: tomli; python_version<"3.11")
        import tomli as tomllib
    return tomllib


def load(path: str | os.PathLike | None = None) -> tuple[dict[str, dict[str, Any]], Path]:
    """All method tables of the config file, and the path read (a missing default file is empty)."""
    explicit = path is not None
    p = Path(path).expanduser() if explicit else default_path()
    if not p.is_file():
        if explicit:
            raise ConfigError(f"{p}: method config file not found")
        return {}, p
    tomllib = _toml()
    try:
        with open(p, "rb") as f:
            doc = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML ({exc})") from None
    for name, table in doc.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{p}: {name!r} must be a table ([{name}]), got a {type(table).__name__}")
    return doc, p


def table_for(method_cls, config: dict[str, dict[str, Any]], path: Path) -> dict[str, Any]:
    """The method's table, checked against its parameters (an unknown key is a one-line error)."""
    table = dict(config.get(method_cls.name, {}))
    unknown = sorted(set(table) - set(method_cls.DEFAULT_PARAMS))
    if unknown:
        known = ", ".join(sorted(method_cls.DEFAULT_PARAMS))
        raise ConfigError(f"{path}: [{method_cls.name}] has unknown key {unknown[0]!r} (known: {known})")
    return table


def merged_params(method_cls, cli_params: dict[str, Any] | None, config_path: str | os.PathLike | None = None):
    """(parameters = config table overridden by ``cli_params``, config path) for a foreign method."""
    config, path = load(config_path)
    return {**table_for(method_cls, config, path), **(cli_params or {})}, path


def not_configured_message(name: str, missing: list[str], path: Path) -> str:
    keys = ", ".join(m.split(":")[0] for m in missing)
    what = "; ".join(missing)
    return (f"method {name!r} is not configured ({what}): set {keys} in [{name}] of {path} "
            f"or pass --param KEY=VALUE for each")
