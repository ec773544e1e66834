"""What a fetch step reports: one ``FetchItem`` per file, ``FetchReport`` for a run, and its errors."""

from __future__ import annotations

from dataclasses import dataclass, field


class FetchError(RuntimeError):
    """A fetch step that failed; ``str(err)`` is one line naming what (URL, file, clip) and why."""


class MissingExtraError(FetchError):
    """An optional dependency that the requested step needs is not installed."""


@dataclass(frozen=True)
class FetchItem:
    what: str  # relpath, or "<clip> frame" / "<clip> video"
    target: str
    status: str  # downloaded | present | failed | skipped
    reason: str = ""
    source: str | None = None  # URL (release) or YouTube id

    @property
    def ok(self) -> bool:
        return self.status in ("downloaded", "present", "skipped")


@dataclass
class FetchReport:
    root: str
    items: list[FetchItem] = field(default_factory=list)

    @property
    def failures(self) -> list[FetchItem]:
        return [i for i in self.items if not i.ok]

    @property
    def ok(self) -> bool:
        return not self.failures

    def count(self, status: str) -> int:
        return sum(i.status == status for i in self.items)

    def summary(self) -> str:
        return (f"{len(self.items)} items: {self.count('downloaded')} downloaded, {self.count('present')} already "
                f"present and verified, {self.count('skipped')} skipped, {self.count('failed')} failed")
