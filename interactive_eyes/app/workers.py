"""Worker processes of the local executors (``--workers N``, ``--devices``) die with their parent.

The executors (app/executors.py) start spawned worker processes that build the run's metric
instances (or the generation method) once and then take one clip at a time. Workers must never
outlive the ``score``/``run`` process that started them, however it ends:

- Linux ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` in the initializer: the kernel kills the worker when
  its parent dies, SIGKILL included (nothing in the parent runs then). The parent may die before
  the call; the initializer then sees a new parent pid and exits at once. (The signal follows the
  parent *thread* that started the worker; the executors submit from the calling thread, which
  lives for the whole run.) Once the workers are gone, multiprocessing's resource tracker sees
  its pipe close and exits as well.
- On SIGTERM (and Ctrl-C / SIGINT) the parent terminates the workers before it leaves, instead of
  waiting for the running clips (``executors.sigterm_raises`` and ``terminate_pool``).

With ``--clips-in-flight K`` a worker scores K clips at once in threads (``clip_threads``) whose
model calls share one batching service (metrics/batching.py): ``map_in_flight`` in this process,
``ThreadedSlots`` in spawned worker processes (one per ``--workers`` slot or ``--devices`` GPU).
"""

from __future__ import annotations

import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux; a no-op elsewhere)."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the prctl took effect
        os._exit(1)


def terminate_pool(pool) -> None:
    """Terminate a ``ProcessPoolExecutor``'s processes now (not after their running task)."""
    for p in list((getattr(pool, "_processes", None) or {}).values()):
        try:
            p.terminate()
        except Exception:
            pass
    pool.shutdown(wait=False, cancel_futures=True)


# --------------------------------------------------------------------------- clips in flight


def clip_threads(state, call, k: int, next_task, put_result, service=None) -> list:
    """Start ``k`` daemon threads that each take ``next_task()`` -> ``(i, task)`` (None: stop)
    and run ``call(state, *task)`` as one clip of a shared ``BatchingService``
    (metrics/batching.py), handing ``put_result((i, True, value))`` or ``(i, False, "Type:
    message")`` on. Daemon threads: a driver that stops (Ctrl-C, SIGTERM, an error) does not wait
    for the clips in flight; its process ends them."""
    import threading

    from interactive_eyes.app.checks import one_line
    from interactive_eyes.metrics.batching import BatchingService

    service = service or BatchingService()

    def work() -> None:
        while True:
            item = next_task()
            if item is None:
                return
            i, task = item
            try:
                with service.participant():
                    out = call(state, *task)
            except BaseException as exc:  # a bug in the worker's code: the driver raises it (never a silent thread)
                put_result((i, False, f"{type(exc).__name__}: {one_line(exc)}"))
            else:
                put_result((i, True, out))

    threads = [threading.Thread(target=work, daemon=True, name=f"ie-bench-clip-{n}") for n in range(k)]
    for t in threads:
        t.start()
    return threads


def map_in_flight(state, call, tasks: list, k: int, on_result) -> None:
    """Every task in this process, ``k`` clips at a time in threads whose model calls are batched
    together; ``on_result(i, value)`` runs in the calling thread as each clip completes."""
    import queue
    import threading

    todo: queue.SimpleQueue = queue.SimpleQueue()
    for item in enumerate(tasks):
        todo.put(item)
    done: queue.SimpleQueue = queue.SimpleQueue()
    n_threads = max(1, min(k, len(tasks)))
    for _ in range(n_threads):
        todo.put(None)
    stopping = threading.Event()  # the driver stopped (an error, --strict, Ctrl-C): no new clip starts
    threads = clip_threads(state, call, n_threads, lambda: None if stopping.is_set() else todo.get(), done.put)
    try:
        for _ in range(len(tasks)):
            while True:
                try:  # with a timeout, so that Ctrl-C / SIGTERM reach this thread while it waits
                    i, ok, value = done.get(timeout=0.5)
                    break
                except queue.Empty:
                    continue
            if not ok:
                raise RuntimeError(f"task {i}: {value}")
            on_result(i, value)
    except BaseException:
        stopping.set()
        raise
    for t in threads:
        t.join()


def _slot_main(env: dict, spec, device: str, parent_pid: int, k: int, tasks, results) -> None:
    """A worker process of ``ThreadedSlots``: build the state once, then run ``k`` clip threads."""
    from interactive_eyes.app import executors

    executors._init_slot(env, spec, device, parent_pid)
    slot = executors._SLOT
    for t in clip_threads(slot["state"], slot["call"], k, tasks.get, results.put):
        t.join()


class ThreadedSlots:
    """``ProcessSlots`` with ``k`` clips in flight per worker process: each slot process runs ``k``
    clip threads that share one batching service, and the driver keeps ``k`` tasks queued on each.
    A slot process that dies takes its clips in flight with it; each is retried on a fresh one up
    to ``retries`` times, as with one clip per worker. Which of them killed it is not known, so the
    retries of a death with several clips in flight run alone on their worker: a clip that died
    beside the culprit is charged one attempt, never the culprit's others."""

    def __init__(self, slots: list, k: int, retries: int):
        self.slots, self.k, self.retries = slots, k, retries

    def map(self, spec, tasks, on_result, on_lost) -> None:
        import multiprocessing as mp
        import queue as queue_mod
        from collections import deque

        ctx = mp.get_context("spawn")
        results = ctx.Queue()
        procs: dict[int, tuple] = {}  # slot -> (process, its task queue)
        inflight: dict[int, set] = {k: set() for k in range(len(self.slots))}
        todo = deque(range(len(tasks)))
        attempts = [0] * len(tasks)
        solo: set[int] = set()  # clips to run alone (they were in flight when their worker died)

        def start(k: int):
            env, device = self.slots[k]
            q = ctx.Queue()
            p = ctx.Process(target=_slot_main, args=(env, spec, device or spec.device, os.getpid(), self.k, q, results),
                            daemon=True, name=f"ie-bench-worker-{k}")
            p.start()
            procs[k] = (p, q)

        def feed(k: int) -> None:
            while todo and len(inflight[k]) < self.k and not inflight[k] & solo:
                if todo[0] in solo and inflight[k]:
                    return  # it waits for this worker, or another, to be free
                if k not in procs:
                    start(k)
                i = todo.popleft()
                attempts[i] += 1
                inflight[k].add(i)
                procs[k][1].put((i, tasks[i]))

        finished: set[int] = set()

        def take(item) -> None:
            i, ok, value = item
            for s in inflight.values():
                s.discard(i)
            if i in finished:  # a retried clip whose dead worker had sent its result after all
                return
            finished.add(i)
            if not ok:
                raise RuntimeError(f"task {i}: {value}")
            on_result(i, value)

        def bury(k: int, p) -> None:
            while True:  # what it finished before it died still counts
                try:
                    take(results.get(timeout=0.1))
                except queue_mod.Empty:
                    break
            del procs[k]
            lost = inflight[k] - finished
            if len(lost) > 1:
                solo.update(lost)
            for i in sorted(lost):
                if attempts[i] <= self.retries:
                    todo.appendleft(i)
                else:
                    finished.add(i)
                    on_lost(i, f"worker process died {attempts[i]} times on this clip (exit code {p.exitcode})")
            inflight[k].clear()

        try:
            for k in range(len(self.slots)):
                feed(k)
            while any(inflight.values()):
                try:
                    take(results.get(timeout=0.5))
                except queue_mod.Empty:
                    pass
                for k, (p, _q) in list(procs.items()):
                    if not p.is_alive():
                        bury(k, p)
                for k in range(len(self.slots)):
                    feed(k)
        except BaseException:
            for p, _q in procs.values():
                p.terminate()
            raise
        for p, q in procs.values():
            for _ in range(self.k):
                q.put(None)
        for p, _q in procs.values():
            p.join()
