"""The scoring engine: every requested metric on every clip, each video decoded once.

    score(generated_dir, ...)            the whole job: plan, resume, run, aggregate, write
      └ analyze_clip(video, clip, ...)   one clip: probe, one streaming decode, face tracks,
                                         every metric's start/update/finish

Nothing decodes a video twice, nothing loads a model per clip (metric instances live for the
whole run, one set per worker process), and results are written as they complete:
``per_clip.jsonl`` gets one line per (clip, metric) the moment it is known, ``results.json``
is rewritten atomically at the end. A (clip, metric) whose cache key is already recorded is
not recomputed, so a killed run resumes where it stopped and ends with identical results.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from interactive_eyes.app.store import ResultStore, dumps, save_npz_atomic
from interactive_eyes.download import sha256_file as file_sha256

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4",)
PER_CLIP_FILE = "per_clip.jsonl"
RESULTS_FILE = "results.json"


# --------------------------------------------------------------------------- configuration


@dataclass
class EngineOptions:
    """Run-wide options that change what metrics see (hashed into every cache key)."""

    device: str = "cpu"
    landmark_backend: str = "mediapipe"
    metric_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    # A generated talking video without its audio stream is malformed (the benchmark is audio
    # driven, and `ie-bench validate` flags it); allow_silent scores its video-only metrics anyway.
    allow_silent: bool = False
    # reference set of each metric that needs one (FID, FVD): a statistics .npz written by
    # `ie-bench stats`, or a folder of real videos/images. Used only by the set-level step, so
    # per-clip statistics (and their cache keys) do not depend on it.
    references: dict[str, str] = field(default_factory=dict)

    def fingerprint(self, metric) -> dict:
        """The run options that reach ``metric``. The device changes numbers only by float noise
        and is not part of the key."""
        fp = {"allow_silent": self.allow_silent}
        if metric.needs & {"faces", "landmarks"}:
            fp["landmark_backend"] = self.landmark_backend
        return fp


def build_metrics(names: list[str], options: EngineOptions):
    """Instantiate metrics from the registry (lazy imports; did-you-mean on unknown names)."""
    from interactive_eyes.metrics import METRICS

    import inspect

    metrics = []
    for name in names:
        cls = METRICS.get(name)
        kwargs = dict(options.metric_options.get(name, {}))
        accepted = inspect.signature(cls.__init__).parameters
        takes_any = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
        if "device" in accepted or takes_any:
            kwargs.setdefault("device", options.device)
        unknown = sorted(k for k in kwargs if k not in accepted and not takes_any)
        if unknown:
            known = sorted(k for k in accepted if k not in ("self", "device") and not k.startswith("_"))
            raise ValueError(f"metric {name}: unknown option(s) {', '.join(unknown)} (options: {', '.join(known)})")
        metrics.append(cls(**kwargs))
    return metrics


def metric_names(requested: list[str] | None = None) -> list[str]:
    from interactive_eyes.metrics import METRICS

    if requested:
        for n in requested:
            METRICS.get(n)  # raises with a suggestion on unknown names
        return list(requested)
    return METRICS.names()


def clip_fingerprint(clip) -> str:
    """Hash of the manifest's definition of a clip (segments and audio decide several metrics)."""
    return hashlib.sha256(dumps(asdict(clip), sort_keys=True).encode()).hexdigest()


def cache_key(video_sha256: str, clip_sha256: str, metric, options: EngineOptions) -> str:
    """Content, not names: the video bytes, the clip definition, the metric's name, version,
    parameters and weights, and the run-wide options that reach the metric."""
    payload = {
        "video": video_sha256,
        "clip": clip_sha256,
        "metric": metric.name,
        "version": metric.version,
        "params": metric.params(),
        "weights": metric.weights(),
        "engine": options.fingerprint(metric),
    }
    return hashlib.sha256(dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


# --------------------------------------------------------------------------- one clip


def _default_tracker(n_people: int, landmarks: str | None, device: str):
    from interactive_eyes.faces.track import FaceTracker

    return FaceTracker(n_people, landmarks=landmarks, device=device)


def analyze_clip(
    video_path: str | os.PathLike,
    clip,
    metrics: list,
    *,
    data_root: str | os.PathLike | None = None,
    options: EngineOptions | None = None,
    tracker_factory: Callable | None = None,
) -> dict[str, Any]:
    """Run ``metrics`` on one video in a single streaming decode; never raises for bad input.

    Returns ``{metric_name: ClipResult}``; a metric that fails (bad file, no face, an error in
    its own code) gets a ``failed`` result with a one-line reason, and the others go on.
    """
    from interactive_eyes.media.errors import MediaError
    from interactive_eyes.media.video import iter_frames_prefetch, probe
    from interactive_eyes.metrics.base import ClipContext, ClipResult, FrameData

    options = options or EngineOptions()
    results: dict[str, Any] = {}
    video_path = Path(video_path)
    try:
        info = probe(video_path)
    except MediaError as exc:
        return {m.name: ClipResult.failed(m.name, str(exc)) for m in metrics}

    if not info.has_audio and not options.allow_silent:
        reason = f"{video_path}: no audio stream (a generated talking video must carry its audio; --allow-silent to score it anyway)"
        return {m.name: ClipResult.failed(m.name, reason) for m in metrics}

    ctx = ClipContext(
        clip=clip,
        video_path=video_path,
        info=info,
        data_root=Path(data_root) if data_root else None,
        device=options.device,
    )
    active: dict[str, tuple[Any, Any]] = {}
    for m in metrics:
        # whether a metric can do without the video's audio (Sync-C* uses the people's own
        # tracks) is the metric's own check()
        reason = _safe(lambda: m.check(ctx), m.name)
        if reason:
            results[m.name] = ClipResult.failed(m.name, reason)
            continue
        try:
            active[m.name] = (m, m.start(ctx))
        except Exception as exc:  # a metric's own failure must not cost the others
            results[m.name] = ClipResult.failed(m.name, f"{type(exc).__name__}: {exc}")

    need_faces = any(m.needs & {"faces", "landmarks"} for m, _ in active.values())
    need_landmarks = any("landmarks" in m.needs for m, _ in active.values())
    tracker = None
    if need_faces:
        factory = tracker_factory or _default_tracker
        tracker = factory(clip.n_people, options.landmark_backend if need_landmarks else None, options.device)

    n_frames = 0
    try:
        for frame in iter_frames_prefetch(video_path):
            faces, landmarks = (tracker.update(frame.rgb, frame.time) if tracker else ((), None))
            fd = FrameData(
                index=frame.index,
                time=frame.time,
                rgb=frame.rgb,
                faces=tuple(faces),
                landmarks=None if landmarks is None else tuple(landmarks),
                landmark_backend=getattr(tracker, "landmark_backend", None) if landmarks is not None else None,
            )
            for name in list(active):
                m, state = active[name]
                try:
                    m.update(state, fd)
                except Exception as exc:
                    results[name] = ClipResult.failed(name, f"frame {frame.index}: {type(exc).__name__}: {exc}")
                    del active[name]
            n_frames += 1
            if not active:
                break
    except MediaError as exc:
        for name in active:
            results[name] = ClipResult.failed(name, str(exc))
        return results
    finally:
        # the tracker's MediaPipe graphs are per clip (cheap to build once the models are
        # loaded, ~30 ms); release them now instead of at garbage collection
        summary = tracker.summary() if tracker else None
        if tracker is not None and hasattr(tracker, "close"):
            tracker.close()

    if n_frames < 2:
        for name in active:
            results[name] = ClipResult.failed(name, f"{video_path}: only {n_frames} frame(s); at least 2 are needed")
        return results

    for name, (m, state) in active.items():
        if summary is not None and summary.status != "ok" and m.needs & {"faces", "landmarks"}:
            results[name] = ClipResult.failed(name, f"{video_path.name}: {summary.reason}")
            continue
        try:
            res = m.finish(state)
        except Exception as exc:
            res = ClipResult.failed(name, f"{type(exc).__name__}: {exc}")
        if summary is not None and m.needs & {"faces", "landmarks"}:
            res.details.setdefault("face_tracks", _summary_dict(summary))
        results[name] = res
    return results


def _safe(fn, name):
    try:
        return fn()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


def _summary_dict(summary) -> dict:
    try:
        d = asdict(summary)
    except TypeError:
        d = dict(vars(summary))
    return json.loads(dumps(d))


def _load_reference(metric, source: str, into: dict) -> str | None:
    """Load (or compute) a metric's reference statistics once per run; a reason on failure."""
    src = Path(source)
    try:
        arrays = metric.load_reference(src)
    except Exception as exc:  # provenance mismatch, unreadable file, empty folder ...
        return f"reference {src}: {exc}"
    into[metric.name] = {"arrays": arrays, "source": str(src),
                         "sha256": file_sha256(src) if src.is_file() else None}
    return None


# --------------------------------------------------------------------------- worker processes

_WORKER: dict[str, Any] = {}


def _worker_init(targets: dict[str, str], options: EngineOptions) -> None:
    """Build the run's metric instances once per worker process (never per clip)."""
    from interactive_eyes.metrics import METRICS

    for name, target in targets.items():  # entries registered at run time reach spawned workers too
        if name not in METRICS:
            METRICS.register(name, target)
    _WORKER["metrics"] = {m.name: m for m in build_metrics(list(targets), options)}
    _WORKER["options"] = options


def _worker_run(video_path: str, clip, names: list[str], data_root: str | None):
    metrics = [_WORKER["metrics"][n] for n in names]
    t0 = time.perf_counter()
    res = analyze_clip(video_path, clip, metrics, data_root=data_root, options=_WORKER["options"])
    return clip.id, res, time.perf_counter() - t0


# --------------------------------------------------------------------------- the whole job


@dataclass
class ClipPlan:
    clip: Any
    video: Path | None
    video_sha256: str | None = None
    todo: list[str] = field(default_factory=list)  # metric names still to compute
    problem: str | None = None  # missing file etc.


def plan_inputs(generated_dir: Path, benchmark, clip_ids: list[str]) -> tuple[dict[str, ClipPlan], list[dict]]:
    """Match ``<clip_id>.mp4`` files to the manifest; list missing, extra and misnamed files."""
    import difflib

    files = {p.stem: p for p in sorted(generated_dir.iterdir()) if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS}
    plans = {}
    for cid in clip_ids:
        clip = benchmark.clip(cid)
        p = files.get(cid)
        plans[cid] = ClipPlan(clip=clip, video=p, problem=None if p else f"{generated_dir / (cid + '.mp4')}: missing file")
    extras = []
    ignore = {"run.json"}
    for p in sorted(generated_dir.iterdir()):
        if p.is_dir() or p.name in ignore or p.name.startswith("."):
            continue
        if p.suffix.lower() in VIDEO_EXTENSIONS and p.stem in benchmark.clip_ids:
            continue
        close = difflib.get_close_matches(p.stem, benchmark.clip_ids, n=1, cutoff=0.8)
        extras.append({"file": p.name, "did_you_mean": f"{close[0]}.mp4" if close else None})
    return plans, extras


def score(
    generated_dir: str | os.PathLike,
    *,
    benchmark=None,
    data_root: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    metrics: list[str] | None = None,
    options: EngineOptions | None = None,
    workers: int = 1,
    clips: list[str] | None = None,
    limit: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
) -> dict:
    """Score a folder of ``<clip_id>.mp4`` files; returns the results.json object.

    ``benchmark``: a Benchmark, a manifest path, or None for InteractiveEyes. ``metrics``: names,
    or None for every registered metric that can run here (the others are listed as skipped with
    their reason). Resumes from ``<out>/per_clip.jsonl`` unless ``overwrite``.
    """
    from tqdm import tqdm

    from interactive_eyes.app.results import build_results
    from interactive_eyes.data import manifest as manifest_mod
    from interactive_eyes.data.paths import data_root as resolve_root
    from interactive_eyes.metrics.base import ClipResult

    t_start = time.time()
    options = options or EngineOptions()
    generated_dir = Path(generated_dir)
    if not generated_dir.is_dir():
        raise FileNotFoundError(f"{generated_dir}: not a folder of generated videos")
    if benchmark is None or isinstance(benchmark, (str, os.PathLike)):
        benchmark = manifest_mod.load(benchmark)
    root = resolve_root(data_root, benchmark.name)
    out = Path(out) if out else generated_dir / "ie-bench"
    out.mkdir(parents=True, exist_ok=True)
    per_clip_path = out / PER_CLIP_FILE
    if overwrite and per_clip_path.exists():
        per_clip_path.unlink()
    store = ResultStore(per_clip_path)
    done = store.by_key()

    clip_ids = list(clips) if clips else benchmark.clip_ids
    for cid in clip_ids:
        benchmark.clip(cid)  # unknown clip ids fail early, with a suggestion
    partial = bool(clips) or bool(limit)
    if limit:
        clip_ids = clip_ids[:limit]

    names = metric_names(metrics)
    instances = build_metrics(names, options)
    skipped_metrics: dict[str, str] = {}
    runnable = []
    references: dict[str, dict] = {}
    for m in instances:
        reason = None
        if "reference" in m.needs and not options.references.get(m.name):
            reason = "needs a reference set: --reference stats.npz (from `ie-bench stats`) or a folder of real videos"
        reason = reason or m.unavailable()
        if reason is None and "person_audio" in m.needs and not root.is_dir():
            reason = f"per-person audio needs the data root {root} (ie-bench data fetch, or --root)"
        if reason is None and "reference" in m.needs:
            reason = _load_reference(m, options.references[m.name], references)
        if reason:
            if metrics:  # explicitly requested: say so loudly, but still record it
                log.warning("metric %s cannot run: %s", m.name, reason)
            skipped_metrics[m.name] = reason
        else:
            runnable.append(m)
    by_name = {m.name: m for m in runnable}

    plans, extras = plan_inputs(generated_dir, benchmark, clip_ids)
    for e in extras:
        hint = f" (did you mean {e['did_you_mean']}?)" if e["did_you_mean"] else ""
        log.warning("%s: not a clip of %s, ignored%s", generated_dir / e["file"], benchmark.name, hint)

    records: dict[tuple[str, str], dict] = {}
    for cid, plan in plans.items():
        if plan.video is None:
            continue
        plan.video_sha256 = file_sha256(plan.video)
        csha = clip_fingerprint(plan.clip)
        for m in runnable:
            key = cache_key(plan.video_sha256, csha, m, options)
            if key in done:
                records[(cid, m.name)] = done[key]
            else:
                plan.todo.append(m.name)
    todo = [p for p in plans.values() if p.todo]
    n_cached = len(records)
    if n_cached:
        log.info("resuming: %d (clip, metric) results already in %s", n_cached, per_clip_path)

    def record(cid: str, res: ClipResult, elapsed: float) -> None:
        plan = plans[cid]
        m = by_name[res.metric]
        key = cache_key(plan.video_sha256, clip_fingerprint(plan.clip), m, options)
        rec = {
            "clip": cid,
            "metric": m.name,
            "metric_version": m.version,
            "status": res.status,
            "reason": res.reason,
            "value": res.value,
            "per_person": res.per_person,
            "details": res.details,
            "video": plan.video.name,
            "video_sha256": plan.video_sha256,
            "cache_key": key,
            "seconds": round(elapsed, 3),
        }
        if res.stats is not None and res.status == "ok":
            stats_path = out / "stats" / m.name / f"{key}.npz"
            save_npz_atomic(stats_path, res.stats)  # before the line: a line implies its stats
            rec["stats"] = str(stats_path.relative_to(out))
        rec = json.loads(dumps(rec))  # exactly what a resumed run will read back
        store.append(rec)
        records[(cid, m.name)] = rec

    bar = tqdm(total=len(todo), desc="score", unit="clip", disable=not progress or not todo)
    if workers <= 1 or len(todo) <= 1:
        for plan in todo:
            t0 = time.perf_counter()
            res = analyze_clip(plan.video, plan.clip, [by_name[n] for n in plan.todo], data_root=root, options=options)
            dt = time.perf_counter() - t0
            for r in res.values():
                record(plan.clip.id, r, dt)
            bar.update(1)
    else:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        from interactive_eyes.metrics import METRICS

        targets = {n: METRICS.target(n) for n in by_name}
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init, initargs=(targets, options)) as pool:
            futures = [pool.submit(_worker_run, str(p.video), p.clip, p.todo, str(root)) for p in todo]
            for fut in as_completed(futures):
                cid, res, dt = fut.result()
                for r in res.values():
                    record(cid, r, dt)
                bar.update(1)
    bar.close()

    results = build_results(
        benchmark=benchmark,
        generated_dir=generated_dir,
        out=out,
        metrics=runnable,
        skipped_metrics=skipped_metrics,
        plans=plans,
        records=records,
        extras=extras,
        references=references,
        partial=partial,
        options=options,
        started=t_start,
    )
    return results
