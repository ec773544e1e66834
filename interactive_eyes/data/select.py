"""Which clips of a benchmark a ``--clips`` option names (shared by fetch, verify and youtube)."""

from __future__ import annotations

from typing import Sequence

from interactive_eyes.data.manifest import Benchmark, Clip


def select_clips(benchmark: Benchmark, clips: Sequence[str] | None) -> list[Clip]:
    """The requested clips in manifest order (``KeyError`` with a did-you-mean for an unknown id)."""
    if not clips:
        return list(benchmark.clips)
    wanted = [benchmark.clip(c).id for c in clips]
    return [c for c in benchmark.clips if c.id in wanted]
