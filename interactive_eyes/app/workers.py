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
