"""One error type for unusable media, whose message is one line naming the file."""

from __future__ import annotations

import os


class MediaError(RuntimeError):
    """A media file that cannot be used: ``str(err)`` is ``"<path>: <what is wrong>"``."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = " ".join(str(reason).split())  # always one line
        super().__init__(f"{self.path}: {self.reason}")
