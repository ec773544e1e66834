"""Library-level errors of the application layer, each tied to one exit code.

The engine and the stores raise these (plain exceptions, no click); the commands turn them into
one-line messages with the exit code of ``interactive_eyes.app.exit_codes``.
"""

from __future__ import annotations

from interactive_eyes.app import exit_codes


class EnvironmentFailure(RuntimeError):
    """Something outside the inputs stopped the command (disk, device, lock): exit 3."""

    exit_code = exit_codes.ENVIRONMENT


class FolderLocked(EnvironmentFailure):
    """Another process holds the folder's advisory lock."""


class DiskFull(EnvironmentFailure):
    """A write failed for lack of space (ENOSPC / EDQUOT); nothing torn was left behind."""


class DeviceUnavailable(EnvironmentFailure):
    """``--device cuda`` (or ``cuda:N``) asked for a device this machine does not have."""


class StrictStop(RuntimeError):
    """``--strict``: the first problem stopped the command (exit 1); the message names it."""

    exit_code = exit_codes.PARTIAL
