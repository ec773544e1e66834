"""Executors: where the clips of a ``score`` or a ``run`` are computed.

    local     this process (``--workers 1``) or N spawned worker processes (``--workers N``)
    devices   one spawned worker per device (``--devices cuda:0,cuda:1``), each pinned through
              ``CUDA_VISIBLE_DEVICES`` so that it sees only its own GPU (as ``cuda:0``)
    ray       long-lived Ray actors, one per GPU or CPU slot of a Ray cluster (app/executors_ray.py)

``clips_in_flight=K`` (``--clips-in-flight K``, local and devices): each worker runs K clips at
once in threads whose model calls are merged into larger batches (metrics/batching.py,
app/workers.py); off (1) by default, so default results stay bit-identical.

Every executor runs the same two functions of a ``WorkerSpec``: ``setup`` once per worker (build
the metric instances and load their models, or build the generation method) and ``call`` once
per task (one clip). Results come back to the driver through ``on_result``; only the driver
writes ``per_clip.jsonl`` / ``results.json`` / ``run.json``, so resume, cache keys and results do
not depend on where a clip ran. A task whose worker dies (a crash, the OOM killer, a killed Ray
actor) is retried on a fresh worker up to ``retries`` times, then handed to ``on_lost`` with the
reason, which the driver records as that clip's failure. Ctrl-C / SIGTERM stops the workers
before the driver leaves (app/workers.py explains how spawned processes die with their parent).
"""

from __future__ import annotations

import importlib
import os
import signal
import threading
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator

# A worker that dies is replaced and its clip tried again this many times (so 3 attempts in all):
# one death is usually the machine (OOM killer, a preempted node), three in a row the clip itself.
DEFAULT_RETRIES = 2

OnResult = Callable[[int, Any], None]  # (task index, what ``call`` returned)
OnLost = Callable[[int, str], None]  # (task index, one-line reason) after the last retry


def resolve(target: str) -> Callable:
    """``"package.module:function"`` -> the function (importable in any worker process)."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker builds once (``setup(*setup_args, device=...)`` -> state) and runs per task
    (``call(state, *task)``); both as ``module:function`` so that any process can import them.
    ``resources``: what one worker holds while alive (Ray: ``num_cpus`` / ``num_gpus``)."""

    setup: str
    setup_args: tuple
    call: str
    device: str = "cpu"
    resources: dict = field(default_factory=lambda: {"num_cpus": 1, "num_gpus": 0})
    # the first task argument is a file path that Ray may ship as bytes (``--ship-videos``); ``call``
    # then gets the bytes and, as its last argument, the original path
    ships_file: bool = False


class Executor:
    """Runs ``spec.call`` on every task; subclasses decide where."""

    name = "executor"

    def map(self, spec: WorkerSpec, tasks: list[tuple], on_result: OnResult, on_lost: OnLost,
            local_state: Any = None) -> None:
        raise NotImplementedError

    def describe(self) -> dict:
        return {"executor": self.name}


class InProcess(Executor):
    """Every task in this process, in order (or ``clips_in_flight`` at a time, in threads);
    ``local_state``: the state already built here (the driver's own metric instances), else
    ``spec.setup`` is called once."""

    name = "local"

    def __init__(self, clips_in_flight: int = 1):
        self.clips_in_flight = _in_flight(clips_in_flight)

    def map(self, spec, tasks, on_result, on_lost, local_state=None):
        state = local_state if local_state is not None else resolve(spec.setup)(*spec.setup_args, device=spec.device)
        call = resolve(spec.call)
        if self.clips_in_flight > 1 and len(tasks) > 1:
            from interactive_eyes.app.workers import map_in_flight

            return map_in_flight(state, call, tasks, self.clips_in_flight, on_result)
        for i, task in enumerate(tasks):
            on_result(i, call(state, *task))


def _in_flight(k: int) -> int:
    if int(k) < 1:
        raise ValueError(f"--clips-in-flight {k}: must be at least 1")
    return int(k)


# --------------------------------------------------------------------------- worker processes

_SLOT: dict[str, Any] = {}


def _init_slot(env: dict[str, str], spec: WorkerSpec, device: str, parent_pid: int) -> None:
    """Initializer of one worker process: die with the parent, ignore Ctrl-C (the parent handles
    it and terminates us), pin the device, then build the worker's state once."""
    from interactive_eyes.app.workers import die_with_parent

    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # before anything initialises CUDA in this process (torch does so lazily, at first use)
    os.environ.update(env)
    _SLOT["state"] = resolve(spec.setup)(*spec.setup_args, device=device)
    _SLOT["call"] = resolve(spec.call)


def _call_slot(task: tuple):
    return _SLOT["call"](_SLOT["state"], *task)


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """SIGTERM becomes SystemExit(143) in the driver while workers run, so that the ``except
    BaseException`` cleanup stops them (only the main thread can install a handler)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigterm(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class ProcessSlots(Executor):
    """One spawned process per slot, each with its own environment and device; a slot runs one
    task at a time and gets the next when it is done (slow clips do not hold up the others)."""

    name = "local"

    def __init__(self, slots: list[tuple[dict[str, str], str | None]], retries: int = DEFAULT_RETRIES,
                 devices: list[str] | None = None, clips_in_flight: int = 1):
        if not slots:
            raise ValueError("no worker slots")
        self.slots = slots  # [(environment variables, device inside the worker or None = spec's)]
        self.retries = retries
        self.devices = devices  # as named on the command line (--devices), for the record
        self.clips_in_flight = _in_flight(clips_in_flight)

    def _pool(self, k: int, spec: WorkerSpec):
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        env, device = self.slots[k]
        return ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"), initializer=_init_slot,
                                   initargs=(env, spec, device or spec.device, os.getpid()))

    def map(self, spec, tasks, on_result, on_lost, local_state=None):
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        from interactive_eyes.app.workers import ThreadedSlots, terminate_pool

        if self.clips_in_flight > 1:
            with sigterm_raises():
                slots = ThreadedSlots(self.slots, self.clips_in_flight, self.retries)
                return slots.map(spec, tasks, on_result, on_lost)
        queue = deque(range(len(tasks)))
        attempts = [0] * len(tasks)
        pools: dict[int, Any] = {}
        running: dict[Any, tuple[int, int]] = {}  # future -> (slot, task)
        with sigterm_raises():
            try:
                def feed(k: int) -> None:
                    if queue:
                        i = queue.popleft()
                        if k not in pools:
                            pools[k] = self._pool(k, spec)
                        attempts[i] += 1
                        running[pools[k].submit(_call_slot, tasks[i])] = (k, i)

                for k in range(min(len(self.slots), len(tasks))):
                    feed(k)
                while running:
                    done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                    for fut in done:
                        k, i = running.pop(fut)
                        try:
                            result = fut.result()
                        except BrokenProcessPool as exc:  # the worker died (crash, OOM killer, kill -9)
                            terminate_pool(pools.pop(k))
                            if attempts[i] <= self.retries:
                                queue.appendleft(i)
                            else:
                                on_lost(i, f"worker process died {attempts[i]} times on this clip "
                                           f"({_one_line(exc)})")
                        else:
                            on_result(i, result)
                        feed(k)
            except BaseException:
                for pool in pools.values():
                    terminate_pool(pool)
                raise
            for pool in pools.values():
                pool.shutdown(wait=True)

    def describe(self):
        return {"executor": "local", "workers": len(self.slots), **({"devices": self.devices} if self.devices else {}),
                **_in_flight_record(self.clips_in_flight)}


def _in_flight_record(k: int) -> dict:
    return {"clips_in_flight": k} if k > 1 else {}  # absent by default: records as before


def _one_line(exc: BaseException) -> str:
    from interactive_eyes.app.checks import one_line

    return one_line(exc)


# --------------------------------------------------------------------------- devices


def pin_device(device: str) -> tuple[dict[str, str], str]:
    """``cuda:N`` -> the worker's environment (``CUDA_VISIBLE_DEVICES=N``: it sees that GPU
    alone) and the device it then names (``cuda:0``, its only GPU); ``cpu`` -> no pinning."""
    kind, _, index = device.partition(":")
    if kind == "cpu":
        return {}, "cpu"
    if kind != "cuda" or (index and not index.isdigit()):
        raise ValueError(f"--devices {device}: expected cuda:N or cpu")
    return {"CUDA_VISIBLE_DEVICES": index or "0"}, "cuda:0"


def parse_devices(text: str | None) -> list[str] | None:
    if not text:
        return None
    devices = [d.strip() for d in text.split(",") if d.strip()]
    if len(set(devices)) != len(devices) and any(d.startswith("cuda") for d in devices):
        raise ValueError(f"--devices {text}: a GPU is named twice (one worker per device)")
    return devices or None


def devices_executor(devices: list[str], retries: int = DEFAULT_RETRIES, clips_in_flight: int = 1) -> ProcessSlots:
    """One worker per device, each pinned (``pin_device``), each with ``clips_in_flight`` clips at
    once; every device must exist here."""
    from interactive_eyes.app.checks import require_device

    slots = []
    for d in devices:
        require_device(d)
        slots.append(pin_device(d))
    return ProcessSlots(slots, retries, devices=list(devices), clips_in_flight=clips_in_flight)


# --------------------------------------------------------------------------- choosing one


class LocalExecutor(Executor):
    """``--workers N``: in this process for N = 1 (or a single task), else N spawned processes."""

    name = "local"

    def __init__(self, workers: int = 1, retries: int = DEFAULT_RETRIES, clips_in_flight: int = 1):
        if workers < 1:
            raise ValueError(f"--workers {workers}: must be at least 1")
        self.workers, self.retries, self.clips_in_flight = workers, retries, _in_flight(clips_in_flight)

    def map(self, spec, tasks, on_result, on_lost, local_state=None):
        if self.workers <= 1 or len(tasks) <= 1:
            return InProcess(self.clips_in_flight).map(spec, tasks, on_result, on_lost, local_state)
        ProcessSlots([({}, None)] * self.workers, self.retries,
                     clips_in_flight=self.clips_in_flight).map(spec, tasks, on_result, on_lost)

    def describe(self):
        return {"executor": "local", "workers": self.workers, **_in_flight_record(self.clips_in_flight)}


def make_executor(kind: str = "local", *, workers: int = 1, devices: list[str] | None = None,
                  ray_address: str | None = None, ship_videos: bool = False,
                  retries: int = DEFAULT_RETRIES, clips_in_flight: int = 1) -> Executor:
    """The executor a command asked for; ``ValueError`` (a usage error) for combinations that
    mean nothing: ``--devices`` with Ray (Ray places actors on GPUs itself) or with ``--workers``,
    ``--ray-address`` / ``--ship-videos`` without ``--executor ray``."""
    if kind not in ("local", "ray"):
        raise ValueError(f"--executor {kind}: expected local or ray")
    clips_in_flight = _in_flight(clips_in_flight)
    if kind == "ray":
        if clips_in_flight > 1:
            raise ValueError("--clips-in-flight is for the local executor (and --devices); "
                             "Ray actors take one clip at a time")
        if devices:
            raise ValueError("--devices is for the local executor; with --executor ray, Ray gives each actor its GPU")
        from interactive_eyes.app.executors_ray import RayExecutor

        return RayExecutor(address=ray_address, ship_videos=ship_videos,
                           max_workers=workers if workers > 1 else None, retries=retries)
    if ray_address or ship_videos:
        raise ValueError("--ray-address and --ship-videos need --executor ray")
    if devices:
        if workers > 1:
            raise ValueError("--devices runs one worker per device; do not combine it with --workers")
        return devices_executor(devices, retries, clips_in_flight)
    return LocalExecutor(workers, retries, clips_in_flight)


# --------------------------------------------------------------------------- score's worker


def score_spec(metrics: dict, options) -> WorkerSpec:
    """The worker of ``score``: the run's metric instances, built once per worker from their
    registry entries (entries registered at run time reach spawned workers and actors too)."""
    from interactive_eyes.metrics import METRICS

    targets = {n: METRICS.target(n) for n in metrics}
    gpu = str(options.device).startswith("cuda")
    needs_cpu = max([int((getattr(m, "resources", None) or {}).get("num_cpus", 1)) for m in metrics.values()] or [1])
    # one worker per GPU when the metrics run there (their models share it), else one per CPU slot
    resources = {"num_cpus": needs_cpu, "num_gpus": 1 if gpu else 0}
    return WorkerSpec(setup="interactive_eyes.app.executors:score_setup", setup_args=(targets, options),
                      call="interactive_eyes.app.executors:score_call", device=options.device, resources=resources,
                      ships_file=True)


def score_setup(targets: dict[str, str], options, device: str | None = None) -> dict:
    from interactive_eyes.app.engine import build_metrics
    from interactive_eyes.metrics import METRICS

    for name, target in targets.items():
        if name not in METRICS:
            METRICS.register(name, target)
    if device and device != options.device:
        options = replace(options, device=device)
    return {"metrics": {m.name: m for m in build_metrics(list(targets), options)}, "options": options}


def score_call(state: dict, video, clip, names: list[str], data_root, info=None, shown_as: str | None = None):
    """One clip: ``analyze_clip`` with the worker's metric instances -> (clip id, results, seconds).

    ``video``: a path this worker can read, or the file's bytes (``--ship-videos``), written to a
    temporary file named like the original; reasons then name ``shown_as`` (the driver's path),
    exactly as a local run would.
    """
    import tempfile
    import time
    from pathlib import Path

    from interactive_eyes.app.engine import analyze_clip

    metrics = [state["metrics"][n] for n in names]
    t0 = time.perf_counter()
    if isinstance(video, (bytes, bytearray, memoryview)):
        with tempfile.TemporaryDirectory(prefix="ie-bench-clip-") as tmp:
            path = Path(tmp) / Path(shown_as).name
            path.write_bytes(video)
            res = analyze_clip(path, clip, metrics, data_root=data_root, options=state["options"], info=info)
            for r in res.values():
                if r.reason:
                    r.reason = r.reason.replace(str(path), shown_as)
    else:
        res = analyze_clip(video, clip, metrics, data_root=data_root, options=state["options"], info=info)
    return clip.id, res, time.perf_counter() - t0


# --------------------------------------------------------------------------- run's worker


def run_spec(method) -> WorkerSpec:
    """The worker of ``ie-bench run``: the method instance (its models load once per worker, at
    its first clip); a method that declares GPU memory takes one GPU per worker."""
    cap = method.capabilities
    gpu = cap.gpu_memory_gb is not None and cap.binding != "mask_api"
    return WorkerSpec(setup="interactive_eyes.app.executors:run_setup", setup_args=(method,),
                      call="interactive_eyes.app.executors:run_call", device="cuda" if gpu else "cpu",
                      resources={"num_cpus": 1, "num_gpus": 1 if gpu else 0})


def run_setup(method, device: str | None = None):
    return method


def run_call(method, clip, out: str, root: str, reference_frames, seed: int, previous, overwrite: bool):
    """One clip of a run -> (clip id, run.json entry); the video is written into ``out``, which
    every worker must see (a shared file system)."""
    from pathlib import Path

    from interactive_eyes.app.run import _run_clip
    from interactive_eyes.baselines.base import Item

    entry = _run_clip(method, clip, Path(out), Path(root), reference_frames, seed, previous, overwrite, Item)
    return clip.id, entry
