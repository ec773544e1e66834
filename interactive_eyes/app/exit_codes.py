"""One exit-code scheme for every ``ie-bench`` command, so scripts can tell what happened.

| code | meaning |
|---|---|
| 0 | ``OK``: everything that was asked for was done and is ok (every requested clip x metric) |
| 1 | ``PARTIAL``: the command completed, but some clip failed, a requested metric was skipped or
      unavailable, or a check found a problem (the printed table says which) |
| 2 | ``USAGE``: a usage or input error: bad option, bad manifest, unknown name (click's own code
      for usage errors is 2 as well) |
| 3 | ``ENVIRONMENT``: the environment stopped the command: weights missing offline, disk full,
      no CUDA for ``--device cuda``, the output folder locked by another process |

``--strict`` turns nothing into a success: it makes a command stop at the first problem (exit 1)
instead of finishing the others; ``--allow-partial`` (leaderboard) accepts partial runs as input.
"""

from __future__ import annotations

import click

OK = 0
PARTIAL = 1
USAGE = 2
ENVIRONMENT = 3

TABLE = {
    OK: "every requested clip x metric is ok",
    PARTIAL: "completed, but some clip failed, a requested metric was skipped, or a check found a problem",
    USAGE: "usage or input error (bad option, bad manifest, unknown name)",
    ENVIRONMENT: "environment error (weights missing offline, disk full, no CUDA, output folder locked)",
}

#: Appended to every command's ``--help`` (click keeps the ``\b`` block unwrapped).
HELP_EPILOG = "\b\nExit codes: " + "; ".join(f"{code} = {text}" for code, text in TABLE.items())


class UsageError(click.ClickException):
    """A bad option, manifest or name: one line, exit 2."""

    exit_code = USAGE


class EnvironmentProblem(click.ClickException):
    """Something outside the inputs stopped the command (weights, disk, device, lock): one line, exit 3."""

    exit_code = ENVIRONMENT
