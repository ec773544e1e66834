"""What every command shares: the exit-code epilog, ``--offline``, and errors -> exit codes.

Library functions raise plain exceptions; ``exits()`` turns them into one line on stderr and the
exit code of ``exit_codes``: usage/input errors (bad option, manifest, name, folder) 2,
environment (``errors.EnvironmentFailure``: lock, disk full, device; weights missing offline;
an optional package not installed; an output folder that cannot be written) 3, ``--strict``
stops 1. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import errno
import os
from typing import Iterator

import click

from interactive_eyes.app import exit_codes

EPILOG = exit_codes.HELP_EPILOG

offline_option = click.option(
    "--offline", is_flag=True, default=False,
    help="Never download weights: a metric whose weights are not cached is skipped (also IE_BENCH_OFFLINE=1).")


@contextlib.contextmanager
def offline_mode(offline: bool) -> Iterator[None]:
    """Set IE_BENCH_OFFLINE=1 for this command (and the workers it spawns), then restore it."""
    if not offline:
        yield
        return
    saved = os.environ.get("IE_BENCH_OFFLINE")
    os.environ["IE_BENCH_OFFLINE"] = "1"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("IE_BENCH_OFFLINE", None)
        else:
            os.environ["IE_BENCH_OFFLINE"] = saved


def _text(exc: BaseException) -> str:
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)  # KeyError's str() adds quotes
    return " ".join(str(text).split())


@contextlib.contextmanager
def exits() -> Iterator[None]:
    """Map the library's exceptions to one-line messages and exit codes."""
    from interactive_eyes.app.errors import EnvironmentFailure, StrictStop
    from interactive_eyes.weights import WeightsError

    try:
        yield
    except click.ClickException:
        raise
    except EnvironmentFailure as exc:
        raise exit_codes.EnvironmentProblem(_text(exc)) from None
    except StrictStop as exc:
        err = click.ClickException(_text(exc))
        err.exit_code = exit_codes.PARTIAL
        raise err from None
    except WeightsError as exc:
        raise exit_codes.EnvironmentProblem(_text(exc)) from None
    except ImportError as exc:  # an optional extra that is not installed
        raise exit_codes.EnvironmentProblem(_text(exc)) from None
    except OSError as exc:
        # a folder that cannot be written (permissions, read-only, full) is the environment; a path
        # that does not exist or is of the wrong kind is the user's input
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS):
            raise exit_codes.EnvironmentProblem(f"{exc.filename or ''}: {exc.strerror}".lstrip(": ")) from None
        if isinstance(exc, FileNotFoundError | NotADirectoryError | IsADirectoryError):
            raise exit_codes.UsageError(_text(exc)) from None
        raise
    except (KeyError, ValueError) as exc:
        raise exit_codes.UsageError(_text(exc)) from None
