"""Worker processes of ``score --workers N``: built once, fed clips, and dead with their parent.

Each worker builds the run's metric instances once (``_init``), then analyses one clip per task.
Workers must never outlive the ``score`` process that started them, however it ends:

- Linux ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` in the initializer: the kernel kills the worker when
  its parent dies, SIGKILL included (nothing in the parent runs then). The parent may die before
  the call; the initializer then sees a new parent pid and exits at once. (The signal follows the
  parent *thread* that started the worker; ``run_pool`` submits from the calling thread, which
  lives for the whole pool.) Once the workers are gone, multiprocessing's resource tracker sees
  its pipe close and exits as well.
- On SIGTERM (and Ctrl-C / SIGINT) the parent terminates the workers before it leaves, instead of
  waiting for the running clips.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, Callable

PR_SET_PDEATHSIG = 1

_WORKER: dict[str, Any] = {}


def die_with_parent(parent_pid: int) -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux; a no-op elsewhere)."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the prctl took effect
        os._exit(1)


def _init(targets: dict[str, str], options, parent_pid: int) -> None:
    """Build the run's metric instances once per worker process (never per clip)."""
    die_with_parent(parent_pid)
    # the parent handles Ctrl-C (and terminates us); a worker must not print its own traceback
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from interactive_eyes.app.engine import build_metrics
    from interactive_eyes.metrics import METRICS

    for name, target in targets.items():  # entries registered at run time reach spawned workers too
        if name not in METRICS:
            METRICS.register(name, target)
    _WORKER["metrics"] = {m.name: m for m in build_metrics(list(targets), options)}
    _WORKER["options"] = options


def _run(video_path: str, clip, names: list[str], data_root: str | None, info=None):
    from interactive_eyes.app.engine import analyze_clip

    metrics = [_WORKER["metrics"][n] for n in names]
    t0 = time.perf_counter()
    res = analyze_clip(video_path, clip, metrics, data_root=data_root, options=_WORKER["options"], info=info)
    return clip.id, res, time.perf_counter() - t0


def _terminate(pool: ProcessPoolExecutor) -> None:
    for p in list((getattr(pool, "_processes", None) or {}).values()):
        try:
            p.terminate()
        except Exception:
            pass
    pool.shutdown(wait=False, cancel_futures=True)


def run_pool(tasks: list[tuple], *, workers: int, targets: dict[str, str], options,
             on_result: Callable[[str, dict, float], None]) -> None:
    """Run ``_run(*task)`` for every task on ``workers`` spawned processes; ``on_result`` gets each
    clip's ``(clip_id, results, seconds)`` as it completes. Any exception (or SIGTERM/SIGINT) in the
    parent terminates the workers before it propagates."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    in_main = threading.current_thread() is threading.main_thread()
    previous = None
    if in_main:
        def on_sigterm(signum, frame):
            raise SystemExit(128 + signum)

        previous = signal.signal(signal.SIGTERM, on_sigterm)
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init, initargs=(targets, options, os.getpid()))
    try:
        futures = [pool.submit(_run, *task) for task in tasks]
        for fut in as_completed(futures):
            on_result(*fut.result())
    except BaseException:
        _terminate(pool)
        raise
    else:
        pool.shutdown(wait=True)
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
