"""Fixtures for the AnyTalker tests: the golden folder and its sizes.

The golden folder is ``$IE_BENCH_GOLDEN_DIR``, else ``$IE_BENCH_TEST_DATA/../golden/anytalker``
(``../shared/golden/anytalker`` in CI). Tests that need it are skipped when neither exists. Sizes
and case lists come only from ``tiny_configs.json``, the ``*.config.json`` files and the tensors,
so further golden folders with the same schema can be checked by the same tests.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

# README tolerances: single modules 1e-5, whole DiT 1e-4 (fp32 CPU)
MODULE_ATOL = 1e-5
DIT_ATOL = 1e-4

# `_test_only_overrides` of the DiT configs: prose keys ("audio blocks (wav2vec layers, real: 12)")
# mapped onto AnyTalkerConfig fields by the text before the parenthesis.
OVERRIDE_FIELDS = {
    "audio blocks": "audio_blocks",
    "audio channels": "audio_channels",
    "audio context_tokens": "audio_context_tokens",
    "audio intermediate_dim": "audio_intermediate_dim",
    "audio window": "audio_window",
    "clip_dim": "clip_dim",
}


def golden_dir_or_none() -> Path | None:
    explicit = os.environ.get("IE_BENCH_GOLDEN_DIR")
    if explicit:
        return Path(explicit) if Path(explicit).is_dir() else None
    data = os.environ.get("IE_BENCH_TEST_DATA")
    if data:
        cand = Path(data) / ".." / "golden" / "anytalker"
        if cand.is_dir():
            return cand.resolve()
    return None


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    d = golden_dir_or_none()
    if d is None:
        pytest.skip("AnyTalker golden vectors not found (set IE_BENCH_GOLDEN_DIR or IE_BENCH_TEST_DATA)")
    return d


@pytest.fixture(scope="session")
def tiny_configs(golden_dir: Path) -> dict:
    with open(golden_dir / "tiny_configs.json", encoding="utf-8") as fh:
        return json.load(fh)


_CACHE: dict[Path, dict] = {}


def load_golden(golden_dir: Path, name: str) -> dict:
    """Tensors of ``<name>.safetensors`` (cached per session)."""
    from safetensors.torch import load_file

    path = golden_dir / f"{name}.safetensors"
    if not path.exists():
        pytest.skip(f"{path.name} not in the golden folder")
    if path not in _CACHE:
        _CACHE[path] = load_file(str(path))
    return _CACHE[path]


def weights_of(tensors: dict) -> dict:
    """The ``weights.<key>`` entries with the prefix stripped (official key names)."""
    return {k[len("weights."):]: v for k, v in tensors.items() if k.startswith("weights.")}


def dit_config(golden_dir: Path, name: str):
    """AnyTalkerConfig of a golden DiT: its JSON (every field honoured) plus the test-only widths."""
    from interactive_eyes.baselines.anytalker import AnyTalkerConfig

    with open(golden_dir / f"{name}.config.json", encoding="utf-8") as fh:
        data = json.load(fh)
    overrides = {}
    for key, value in data.get("_test_only_overrides", {}).items():
        short = key.split(" (")[0].strip()
        if short not in OVERRIDE_FIELDS:
            raise AssertionError(f"unknown test-only override {key!r}: extend OVERRIDE_FIELDS")
        overrides[OVERRIDE_FIELDS[short]] = value
    return AnyTalkerConfig.from_json_fields(data, **overrides), data


def max_err(a, b) -> float:
    return float((a.double() - b.double()).abs().max()) if a.numel() else 0.0


def cases(tensors: dict, pattern: str) -> list[re.Match]:
    """Every tensor name fully matching ``pattern``, sorted."""
    rx = re.compile(pattern)
    return [m for k in sorted(tensors) if (m := rx.fullmatch(k))]


class GoldenKit:
    """Everything a golden test needs, handed out by the ``gk`` fixture (test modules do not
    import conftest: without __init__.py files that import would be ambiguous)."""

    module_atol = MODULE_ATOL
    dit_atol = DIT_ATOL

    def __init__(self, root: Path, configs: dict) -> None:
        self.dir = root
        self.configs = configs

    def load(self, name: str) -> dict:
        return load_golden(self.dir, name)

    def config(self, name: str) -> dict:
        if name not in self.configs:
            pytest.skip(f"{name} not described in tiny_configs.json")
        return self.configs[name]

    def dit_config(self, name: str):
        return dit_config(self.dir, name)

    weights_of = staticmethod(weights_of)
    max_err = staticmethod(max_err)
    cases = staticmethod(cases)


@pytest.fixture(scope="session")
def gk(golden_dir: Path, tiny_configs: dict) -> GoldenKit:
    return GoldenKit(golden_dir, tiny_configs)
