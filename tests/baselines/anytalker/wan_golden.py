"""What the Wan encoder golden tests (test_wan_*.py) share: the golden folder and the error measure.

Golden folder: ``$IE_BENCH_TEST_DATA/../golden/wan-encoders`` (its README gives the tiny models and
the tolerances); a test needing it is skipped when the file it names is not there.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch


def golden_dir(required: str) -> Path:
    """The golden folder, which must hold ``required`` (else the test is skipped)."""
    data = os.environ.get("IE_BENCH_TEST_DATA")
    d = Path(data).resolve() / ".." / "golden" / "wan-encoders" if data else None
    if d is None or not (d / required).is_file():
        pytest.skip("Wan encoder golden vectors not found (set IE_BENCH_TEST_DATA)")
    return d.resolve()


def err(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest absolute difference, in float64, of two tensors of one shape."""
    assert a.shape == b.shape, (a.shape, b.shape)
    return float((a.double() - b.double()).abs().max())
