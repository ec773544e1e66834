"""The Ray executor (``--executor ray``): clips over long-lived actors of a Ray cluster.

``pip install ie-bench[ray]``. With ``address=None`` a local Ray instance is started for the run
and stopped after it; ``"auto"`` or ``HOST:PORT`` joins a running cluster (``ray start --head`` on
one node, ``ray start --address HOST:PORT`` on the others; docs/scale_out.md). A process that
already called ``ray.init`` keeps its own instance.

One actor per GPU (``num_gpus=1`` when the run's device is CUDA) or per CPU slot (``num_cpus``
from the spec), as many as the cluster holds, at most one per task. Each actor builds the
worker's state once (the metric instances and their models) and then takes one clip at a time;
the driver hands the next clip to whichever actor is free. The driver alone records results, so
resume, cache keys and results.json are those of a local run.

Data locality: a task names the video by its path, which every node must see (a shared file
system mounted at the same path), or, with ``ship_videos``, carries the file's bytes through
Ray's object store (put when the clip is handed out, dropped when its result is in).

An actor that dies (a crash, the OOM killer, a lost node, ``ray.kill``) is replaced, and its clip
is tried again up to ``retries`` times, then recorded as failed with the reason. An error raised
by the worker's own code is that clip's failure at once (retrying would give the same error).
Ctrl-C / SIGTERM cancels the running tasks and kills the actors before the driver leaves.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from pathlib import Path

from interactive_eyes.app.executors import DEFAULT_RETRIES, Executor, WorkerSpec, resolve, sigterm_raises

log = logging.getLogger(__name__)


class ClipWorker:
    """The body of one Ray actor: the worker's state, built once, and one task at a time."""

    def __init__(self, spec: WorkerSpec, device: str):
        self.state = resolve(spec.setup)(*spec.setup_args, device=device)
        self.call = resolve(spec.call)

    def ready(self) -> int:
        return os.getpid()

    def run(self, *task):
        return self.call(self.state, *task)


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ImportError("--executor ray needs Ray: pip install 'ie-bench[ray]'") from None
    return ray


def innermost(exc: BaseException) -> BaseException:
    """The user's exception inside Ray's wrappers (RayTaskError.cause, ActorDiedError's creation
    task error)."""
    seen = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        nxt = getattr(exc, "cause", None) or getattr(exc, "__cause__", None)
        if not isinstance(nxt, BaseException):
            break
        exc = nxt
    return exc


def _brief(exc: BaseException, limit: int = 300) -> str:
    """One line: the user's exception (``Type: message``); for a Ray error that keeps only the
    text (ActorDiedError of a failed ``__init__``), the traceback's last line, which names it."""
    import re

    from interactive_eyes.app.checks import one_line

    inner = innermost(exc)
    if type(inner).__module__.startswith("ray."):
        lines = [ln.strip() for ln in re.sub(r"\x1b\[[0-9;]*m", "", str(inner)).splitlines() if ln.strip()]
        text = lines[-1] if lines else type(inner).__name__
    else:
        text = one_line(inner)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, address: str | None = None, ship_videos: bool = False, max_workers: int | None = None,
                 retries: int = DEFAULT_RETRIES):
        self.address, self.ship_videos, self.max_workers, self.retries = address, ship_videos, max_workers, retries

    def describe(self):
        return {"executor": "ray", "address": self.address, "ship_videos": self.ship_videos}

    # ----------------------------------------------------------------- cluster and actors

    def _connect(self, ray) -> bool:
        """-> whether this call started Ray (and must stop it)."""
        if ray.is_initialized():
            return False
        kwargs = dict(logging_level=logging.WARNING, log_to_driver=False)
        if self.address:
            ray.init(address=self.address, **kwargs)
        else:
            ray.init(include_dashboard=False, **kwargs)
        return True

    def _n_actors(self, ray, spec: WorkerSpec, n_tasks: int) -> int:
        from interactive_eyes.app.errors import EnvironmentFailure

        total = ray.cluster_resources()
        need_cpu = float(spec.resources.get("num_cpus", 1))
        need_gpu = float(spec.resources.get("num_gpus", 0))
        n = int(total.get("CPU", 0) // need_cpu) if need_cpu else n_tasks
        if need_gpu:
            if total.get("GPU", 0) < need_gpu:
                raise EnvironmentFailure(f"ray: the cluster has {total.get('GPU', 0):g} GPU(s) and a worker needs "
                                         f"{need_gpu:g} (--device {spec.device}); use --device cpu or add GPU nodes")
            n = min(n, int(total["GPU"] // need_gpu))
        if n < 1:
            raise EnvironmentFailure(f"ray: the cluster has {total.get('CPU', 0):g} CPU(s) and a worker needs {need_cpu:g}")
        return max(1, min(n, n_tasks, self.max_workers or n))

    def _actor(self, ray, spec: WorkerSpec):
        need_gpu = spec.resources.get("num_gpus", 0)
        # Ray sets CUDA_VISIBLE_DEVICES to the actor's own GPU, which the actor then names cuda:0
        device = "cuda:0" if need_gpu else spec.device
        cls = ray.remote(ClipWorker).options(num_cpus=spec.resources.get("num_cpus", 1), num_gpus=need_gpu,
                                             max_restarts=0, max_task_retries=0)
        return cls.remote(spec, device)

    # ----------------------------------------------------------------- the run

    def map(self, spec, tasks, on_result, on_lost, local_state=None):
        if not tasks:
            return
        ray = _import_ray()
        started = self._connect(ray)
        actors: list = []
        running: dict = {}  # ObjectRef -> (actor slot, task index)
        try:
            with sigterm_raises():
                n = self._n_actors(ray, spec, len(tasks))
                actors = [self._actor(ray, spec) for _ in range(n)]
                self._wait_ready(ray, actors)
                self._dispatch(ray, spec, tasks, actors, running, on_result, on_lost)
        except BaseException:
            for ref in list(running):  # Ctrl-C, SIGTERM, an error in the driver: stop the remote work
                try:
                    ray.cancel(ref, force=True)
                except Exception:
                    pass
            raise
        finally:
            for a in actors:
                try:
                    ray.kill(a)
                except Exception:
                    pass
            if started:
                ray.shutdown()

    def _wait_ready(self, ray, actors) -> None:
        """Every actor has built its state; a setup that fails (a model that cannot load, no such
        device) fails the same way everywhere, so it stops the run as an environment error."""
        from interactive_eyes.app.errors import EnvironmentFailure

        try:
            ray.get([a.ready.remote() for a in actors])
        except ray.exceptions.RayError as exc:
            raise EnvironmentFailure(f"ray: a worker could not start: {_brief(exc)}") from None

    def _dispatch(self, ray, spec, tasks, actors, running, on_result, on_lost) -> None:
        queue = deque(range(len(tasks)))
        attempts = [0] * len(tasks)

        def feed(k: int) -> None:
            if queue:
                i = queue.popleft()
                attempts[i] += 1
                args = tasks[i]
                if self.ship_videos and spec.ships_file:
                    # the bytes travel through the object store; the original path names the clip
                    args = (ray.put(Path(args[0]).read_bytes()), *args[1:], str(args[0]))
                running[actors[k].run.remote(*args)] = (k, i)

        for k in range(len(actors)):
            feed(k)
        while running:
            ready, _ = ray.wait(list(running), num_returns=1)
            ref = ready[0]
            k, i = running.pop(ref)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayTaskError as exc:  # the worker's own code raised: no retry
                on_lost(i, f"worker error: {_brief(exc)}")
            except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError,
                    ray.exceptions.ObjectLostError, ray.exceptions.NodeDiedError) as exc:
                log.warning("ray: the worker of task %d died (attempt %d): %s", i, attempts[i], _brief(exc, 160))
                try:
                    ray.kill(actors[k])
                except Exception:
                    pass
                actors[k] = self._actor(ray, spec)  # a fresh one builds its state again
                if attempts[i] <= self.retries:
                    queue.appendleft(i)
                else:
                    on_lost(i, f"worker died {attempts[i]} times on this clip ({type(exc).__name__})")
            else:
                on_result(i, result)
            feed(k)
