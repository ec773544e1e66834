"""Cross-clip batching: one forward pass for the model inputs of several clips scored at once.

With ``--clips-in-flight K`` a worker scores K clips at the same time, one thread per clip
(app/executors.py): the decoder (PyAV), MediaPipe, torch and onnxruntime release the GIL, so the
clips' decoding and landmarks overlap each other and the model work. Each metric calls its network
in one place, through ``run(key, fn, x)``:

- no service active in the calling thread (the default, and every thread that is not a clip of
  a ``BatchingService``): ``fn(x)``, exactly as before; only the call is counted (``STATS``);
- in a clip thread of a service: the request joins the others pending for the same ``key`` (one
  network and method) with the same per-item shape, dtype and device; one of the waiting threads
  concatenates them along dimension 0, runs ``fn`` once, and hands each caller its own rows, in
  the order of its input.

At most one batch of a network runs at a time (a second forward would only queue behind the first
on the device); the requests that arrive meanwhile wait and then run together as the next batch,
at once. Otherwise a batch is run when every clip thread of the service is waiting on a model
(nothing more can arrive), or when its oldest request has waited ``max_wait`` seconds, or when it
holds ``max_batch`` items. A clip thread has at most one request outstanding, so a batch holds at most
K requests: memory stays within K times what the metric asks for alone. A request is never cut,
so one larger than ``max_batch`` runs alone.

If the merged call raises (one caller's input is bad, or the larger batch does not fit), every
request of it is run again on its own, so an error reaches only the caller whose input causes it.
A clip thread that ends (done, failed, stopped early) leaves the service, and the others stop
waiting for it.

Results: the networks run in eval mode, so an item's output does not depend on the others in its
batch in exact arithmetic; in float32 a different batch size may pick different kernels and change
the last bits (measured in tests/app/test_batching.py and docs/scale_out.md).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Any, Callable, Hashable, Iterator

# How long a request waits for others before it runs anyway: about one forward of one request on
# an H100 at the rates issue 15 measured (20 SyncNet windows at 6,975/s = 3 ms, 50 Inception
# frames at 5,085/s = 10 ms), so a request never waits much longer than a forward it could share.
DEFAULT_MAX_WAIT = 0.005
# No cap on the items of a batch by default: at most one request per clip in flight.
DEFAULT_MAX_BATCH = None

_local = threading.local()
_stats_lock = threading.Lock()
# name -> [forward calls, items, requests]: every call made through ``run``, batched or not
STATS: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])


def _name(key: Hashable) -> str:
    return str(key[0]) if isinstance(key, tuple) and key else str(key)


def _count(key: Hashable, items: int, requests: int) -> None:
    with _stats_lock:
        s = STATS[_name(key)]
        s[0] += 1
        s[1] += items
        s[2] += requests


def stats() -> dict[str, dict[str, float]]:
    """Per network: forward calls, items, requests and the mean batch size (items per call)."""
    with _stats_lock:
        return {n: {"calls": c, "items": i, "requests": r, "mean_batch": i / c if c else 0.0}
                for n, (c, i, r) in STATS.items()}


def reset_stats() -> None:
    with _stats_lock:
        STATS.clear()


def active() -> "BatchingService | None":
    """The service of the calling clip thread, or None."""
    return getattr(_local, "service", None)


def run(key: Hashable, fn: Callable[[Any], Any], x: Any) -> Any:
    """``fn(x)`` for a batch ``x`` (a torch tensor or numpy array, items along dimension 0),
    merged with other clips' requests for the same ``key`` when the calling thread is a clip of a
    ``BatchingService``. ``key``: (a name for the statistics, the network object, ...): requests
    with equal keys must be interchangeable calls of one network."""
    service = active()
    if service is None:
        _count(key, _length(x), 1)
        return fn(x)
    return service.forward(key, fn, x)


# --------------------------------------------------------------------------- arrays


def _length(x) -> int:
    return int(x.shape[0])


def _signature(x) -> tuple:
    """What requests must share to be concatenated: the array kind, per-item shape, dtype, device."""
    kind = "torch" if type(x).__module__.startswith("torch") else "numpy"
    return kind, tuple(x.shape[1:]), str(x.dtype), str(getattr(x, "device", "cpu"))


def _concat(xs: list):
    if type(xs[0]).__module__.startswith("torch"):
        import torch

        return torch.cat(xs)
    import numpy as np

    return np.concatenate(xs)


def _split(out, sizes: list[int]) -> list:
    """The rows of each request: a tensor / array, or a list or tuple of them (Inception's)."""
    if isinstance(out, (list, tuple)):
        parts = [_split(o, sizes) for o in out]
        return [type(out)(p[k] for p in parts) for k in range(len(sizes))]
    if int(out.shape[0]) != sum(sizes):
        raise ValueError(f"a batched network returned {int(out.shape[0])} rows for {sum(sizes)} inputs")
    rows, start = [], 0
    for n in sizes:
        rows.append(out[start:start + n])
        start += n
    return rows


# --------------------------------------------------------------------------- the service


_UNSET = object()


class _Request:
    __slots__ = ("x", "fn", "n", "t", "taken", "done", "result", "error")

    def __init__(self, x, fn, n: int):
        self.x, self.fn, self.n, self.t = x, fn, n, time.monotonic()
        self.taken = self.done = False
        self.result, self.error = _UNSET, None


class BatchingService:
    """Coalesces the model requests of the clip threads that joined it (``participant()``)."""

    def __init__(self, max_wait: float | None = None, max_batch: int | None = DEFAULT_MAX_BATCH):
        max_wait = DEFAULT_MAX_WAIT if max_wait is None else max_wait  # read now: tests and benchmarks set it
        if max_wait < 0:
            raise ValueError(f"batching: max_wait must be >= 0 s, not {max_wait}")
        if max_batch is not None and max_batch < 1:
            raise ValueError(f"batching: max_batch must be at least 1, not {max_batch}")
        self.max_wait, self.max_batch = float(max_wait), max_batch
        self._cond = threading.Condition()
        self._participants = 0
        self._blocked = 0  # clip threads waiting for a result and not running a batch themselves
        self._pending: dict[tuple, list[_Request]] = {}
        self._running: set[tuple] = set()  # groups with a batch running now

    @property
    def participants(self) -> int:
        return self._participants

    @contextmanager
    def participant(self) -> Iterator[None]:
        """The calling thread is one clip of this service while the block runs."""
        if active() is not None:
            raise RuntimeError("batching: this thread already belongs to a batching service")
        with self._cond:
            self._participants += 1
        _local.service = self
        try:
            yield
        finally:
            _local.service = None
            with self._cond:
                self._participants -= 1
                self._cond.notify_all()  # the others may now all be waiting: their batches can go

    def forward(self, key: Hashable, fn: Callable, x) -> Any:
        req = _Request(x, fn, _length(x))
        group = (key, _signature(x))
        with self._cond:
            self._pending.setdefault(group, []).append(req)
            self._blocked += 1
            self._cond.notify_all()
            while not req.done:
                if req.taken or group in self._running:  # in, or behind, a batch running now
                    self._cond.wait()
                    continue
                wait = self._due(group)
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                batch = self._take(group)
                self._blocked -= 1
                self._running.add(group)
                self._cond.release()
                try:
                    self._run(key, batch)
                finally:
                    self._cond.acquire()
                    self._running.discard(group)
                    for r in self._pending.get(group, ()):
                        r.t = float("-inf")  # they waited behind this batch: the next one goes now
                    self._blocked -= sum(r is not req for r in batch)
                    if not req.done:
                        self._blocked += 1
                    self._cond.notify_all()
        if req.error is not None:
            raise req.error
        return req.result

    def _due(self, group) -> float:
        """0 when the batch of ``group`` should run now, else how long to wait at most."""
        queue = self._pending[group]
        if self._blocked >= self._participants:
            return 0.0
        if self.max_batch is not None and sum(r.n for r in queue) >= self.max_batch:
            return 0.0
        return max(0.0, queue[0].t + self.max_wait - time.monotonic())

    def _take(self, group) -> list[_Request]:
        """The oldest requests of ``group``, up to ``max_batch`` items (at least one request)."""
        queue = self._pending[group]
        batch, items = [], 0
        while queue and (not batch or self.max_batch is None or items + queue[0].n <= self.max_batch):
            r = queue.pop(0)
            r.taken = True
            batch.append(r)
            items += r.n
        if not queue:
            del self._pending[group]
        return batch

    def _run(self, key, batch: list[_Request]) -> None:
        """One forward for ``batch``; on an error, each request alone. Marks every request done."""
        try:
            if len(batch) == 1:
                self._alone(key, batch[0])
                return
            try:
                out = batch[0].fn(_concat([r.x for r in batch]))
                rows = _split(out, [r.n for r in batch])
            except Exception:
                for r in batch:  # the error belongs to whichever input causes it
                    self._alone(key, r)
                return
            _count(key, sum(r.n for r in batch), len(batch))
            for r, part in zip(batch, rows):
                r.result = part
        finally:
            for r in batch:
                if r.result is _UNSET and r.error is None:
                    r.error = RuntimeError("batching: the thread running this batch was interrupted")
                r.done = True

    @staticmethod
    def _alone(key, r: _Request) -> None:
        _count(key, r.n, 1)
        try:
            r.result = r.fn(r.x)
        except Exception as exc:
            r.error = exc
