"""A small typed registry of lazily imported entries (methods, metrics).

Entries are ``"module:Attr"`` strings, imported only when ``get`` asks for one, so listing names
(``ie-bench --help``, ``ie-bench methods``) imports no heavy library. An unknown name raises
``UnknownNameError`` (a ``KeyError``) whose message is one line with a "did you mean" hint.

    METHODS = Registry("method", {"static": "interactive_eyes.baselines.static:StaticMethod"})
    METHODS.get("static")   # -> the StaticMethod class (imported now)
    METHODS.names()         # -> ["static"]
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any, Iterator, Mapping


class UnknownNameError(KeyError):
    """An unregistered name. ``str(err)`` is one line, e.g. ``unknown method 'statc' (did you mean 'static'?)``."""

    def __init__(self, kind: str, name: str, known: list[str]):
        self.kind = kind
        self.name = name
        self.known = known
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(known) or 'none'}"
        self.message = f"unknown {kind} {name!r} ({hint})"
        super().__init__(self.message)

    def __str__(self) -> str:  # KeyError.__str__ would quote the message
        return self.message


class Registry:
    """Name -> lazily imported object, for one kind of thing (``"method"``, ``"metric"``)."""

    def __init__(self, kind: str, entries: Mapping[str, str] | None = None):
        self.kind = kind
        self._entries: dict[str, str] = {}
        self._loaded: dict[str, Any] = {}
        for name, target in (entries or {}).items():
            self.register(name, target)

    def register(self, name: str, target: str | Any) -> None:
        """Add ``name``: a ``"module:Attr"`` string (imported lazily) or the object itself."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.kind} registry: name must be a non-empty string, got {name!r}")
        if name in self._entries or name in self._loaded:
            raise ValueError(f"{self.kind} registry: {name!r} is already registered")
        if isinstance(target, str):
            module, sep, attr = target.partition(":")
            if not sep or not module or not attr:
                raise ValueError(f"{self.kind} registry: {name!r} -> {target!r} is not 'module:Attr'")
            self._entries[name] = target
        else:
            self._loaded[name] = target

    def names(self) -> list[str]:
        return sorted(set(self._entries) | set(self._loaded))

    def target(self, name: str) -> str:
        """The ``"module:Attr"`` string of a lazy entry (without importing it)."""
        if name in self._entries:
            return self._entries[name]
        if name in self._loaded:
            obj = self._loaded[name]
            return f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', type(obj).__name__)}"
        raise UnknownNameError(self.kind, name, self.names())

    def get(self, name: str) -> Any:
        """The registered object, importing its module on first use."""
        if name in self._loaded:
            return self._loaded[name]
        if name not in self._entries:
            raise UnknownNameError(self.kind, name, self.names())
        module, attr = self._entries[name].split(":")
        obj = importlib.import_module(module)
        for part in attr.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                raise ImportError(f"{self.kind} {name!r}: {module} has no attribute {attr!r}") from None
        self._loaded[name] = obj
        return obj

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._loaded

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __getitem__(self, name: str) -> Any:
        return self.get(name)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"
