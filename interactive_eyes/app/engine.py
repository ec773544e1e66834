"""The scoring engine: every requested metric on every clip, each video decoded once.

    score(generated_dir, ...)            the whole job: lock, plan, check, resume, run, aggregate, write
      ├ checks.check_video(...)          the per-clip contract shared with `validate` (app/checks.py)
      └ analyze_clip(video, clip, ...)   one clip: probe, one streaming decode, face tracks,
                                         every metric's start/update/finish

Nothing decodes a video twice, nothing loads a model per clip (metric instances live for the
whole run, one set per worker process or Ray actor, app/executors.py), and results are written as they
complete: ``per_clip.jsonl`` gets one line per (clip, metric) the moment it is known,
``results.json`` is rewritten atomically at the end. A (clip, metric) whose cache key is already
recorded is not recomputed, so a killed run resumes where it stopped and ends with identical
results. One ``score`` process writes an output folder at a time (app/lock.py).

Nothing that concerns one file costs the run: an unreadable, corrupt, wrong-length or
wrong-rate video fails that clip (status ``failed`` and a one-line reason in per_clip.jsonl) and
the other clips score; a metric whose model cannot be loaded is listed as skipped with its reason.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from interactive_eyes.app.checks import (  # noqa: F401 (VIDEO_EXTENSIONS, ClipPlan, plan_inputs: re-exported)
    VIDEO_EXTENSIONS, ClipPlan, check_video, one_line, plan_inputs, require_device)
from interactive_eyes.app.lock import exclusive
from interactive_eyes.app.tracking import FACE_NEEDS, TRACKING_MODES, resolved, tracking_mode  # noqa: F401
from interactive_eyes.app.store import dumps

log = logging.getLogger(__name__)

PER_CLIP_FILE = "per_clip.jsonl"
RESULTS_FILE = "results.json"
LOCK_FILE = ".ie-bench-score.lock"


# --------------------------------------------------------------------------- configuration


@dataclass
class EngineOptions:
    """Run-wide options that change what metrics see (hashed into every cache key)."""

    device: str = "cpu"
    landmark_backend: str = "mediapipe-tasks"  # faces.landmarks.DEFAULT_BACKEND
    metric_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    # A generated talking video without its audio stream is malformed (the benchmark is audio
    # driven, and `ie-bench validate` flags it); allow_silent scores its video-only metrics anyway.
    allow_silent: bool = False
    # reference set of each metric that needs one (FID, FVD): a statistics .npz written by
    # `ie-bench stats`, or a folder of real videos/images. Used only by the set-level step, so
    # per-clip statistics (and their cache keys) do not depend on it.
    references: dict[str, str] = field(default_factory=dict)
    # 'auto': read each person with the tracker's mesh model only in the frames some metric needs
    # them, when every face metric of the run can say which (``tracking_mode``); 'every-frame':
    # always everyone. ``score`` resolves 'auto' to the run's mode ('on-demand' | 'every-frame')
    # before any clip, so that every clip of a run, resumed or not, is tracked the same way.
    tracking: str = "auto"

    def fingerprint(self, metric) -> dict:
        """The run options that reach ``metric``. The device changes numbers only by float noise
        and is not part of the key. The tracking mode is keyed for metrics that can track on
        demand (their values depend on it; any other face metric forces 'every-frame')."""
        fp = {"allow_silent": self.allow_silent}
        if metric.needs & {"faces", "landmarks"}:
            fp["landmark_backend"] = self.landmark_backend
            if metric.tracks_on_demand():
                fp["tracking"] = self.tracking
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


# --------------------------------------------------------------------------- what `ie-bench run` decided


RUN_FILE = "run.json"


def run_decisions(generated_dir: str | os.PathLike) -> dict[str, dict]:
    """Clips that ``ie-bench run`` recorded in ``GENERATED_DIR/run.json`` as not generated.

    -> ``{clip_id: {"status", "reason", "method"}}`` with status ``unsupported`` (the method's
    ``check()`` declined the clip: too many people, too short ...) or ``not_generated`` (its
    generation failed). ``score`` records these clips as not scored with the run's reason instead
    of a bare "missing file", so a method that cannot do a clip is counted, never dropped. A
    run.json that is absent, unreadable or not an ie-bench run file gives ``{}`` (the clips are
    then just missing); results.json reports such a file under ``run``.
    """
    path = Path(generated_dir) / RUN_FILE
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict) or doc.get("schema") != "ie-bench/run" or not isinstance(doc.get("clips"), dict):
        return {}
    method = doc.get("method")
    out = {}
    for cid, e in doc["clips"].items():
        if not isinstance(e, dict) or e.get("status") in ("ok", None):
            continue
        status = "unsupported" if e.get("decision") == "unsupported" else "not_generated"
        what = "unsupported by" if status == "unsupported" else "not generated by"
        reason = " ".join(str(e.get("reason") or e.get("status")).split())
        out[str(cid)] = {"status": status, "reason": f"{what} {method} (run.json): {reason}", "method": method}
    return out


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
    info=None,
) -> dict[str, Any]:
    """Run ``metrics`` on one video in a single streaming decode; never raises for bad input.

    Returns ``{metric_name: ClipResult}``; a metric that fails (bad file, no face, an error in
    its own code) gets a ``failed`` result with a one-line reason, and the others go on. The
    file first passes ``checks.check_video`` (the contract ``validate`` applies); ``info``: its
    probe when the caller already has it.
    """
    from interactive_eyes.media.errors import MediaError
    from interactive_eyes.media.video import iter_frames_prefetch
    from interactive_eyes.metrics.base import ClipContext, ClipResult, FrameData

    options = options or EngineOptions()
    results: dict[str, Any] = {}
    video_path = Path(video_path)
    checked = check_video(video_path, clip, require_audio=not options.allow_silent, info=info)
    if not checked.ok:
        return {m.name: ClipResult.failed(m.name, checked.reason) for m in metrics}
    info = checked.info

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
            results[m.name] = ClipResult.failed(m.name, one_line(exc))

    demands = None  # per-frame (index, time) -> wanted per person, one per face metric
    if tracking_mode(metrics, options) == "on-demand":  # a resolved 'every-frame' stays so
        demands = []
        for name in [n for n, (m, _) in active.items() if m.needs & FACE_NEEDS]:
            try:
                demands.append(active[name][0].tracking_demand(ctx))
            except Exception as exc:  # that metric's own failure: the others go on
                results[name] = ClipResult.failed(name, f"tracking demand: {one_line(exc)}")
                del active[name]
    need_faces = any(m.needs & FACE_NEEDS for m, _ in active.values())
    need_landmarks = any("landmarks" in m.needs for m, _ in active.values())
    tracker = None
    if need_faces:
        factory = tracker_factory or _default_tracker
        try:
            tracker = factory(clip.n_people, options.landmark_backend if need_landmarks else None, options.device)
        except Exception as exc:  # e.g. a landmark backend that cannot load: the frame-only metrics go on
            for name in [n for n, (m, _) in active.items() if m.needs & {"faces", "landmarks"}]:
                results[name] = ClipResult.failed(name, f"face tracker: {one_line(exc)}")
                del active[name]

    n_frames = 0
    try:
        for frame in iter_frames_prefetch(video_path):
            wanted = None
            if tracker is None:
                faces, landmarks = (), None
            elif demands:
                wanted = tuple(any(w) for w in zip(*(d(frame.index, frame.time) for d in demands)))
                faces, landmarks = tracker.update(frame.rgb, frame.time, want=wanted)
            else:
                faces, landmarks = tracker.update(frame.rgb, frame.time)
            fd = FrameData(
                index=frame.index,
                time=frame.time,
                rgb=frame.rgb,
                faces=tuple(faces),
                landmarks=None if landmarks is None else tuple(landmarks),
                landmark_backend=getattr(tracker, "landmark_backend", None) if landmarks is not None else None,
                wanted=wanted,
            )
            for name in list(active):
                m, state = active[name]
                try:
                    m.update(state, fd)
                except Exception as exc:
                    results[name] = ClipResult.failed(name, f"frame {frame.index}: {one_line(exc)}")
                    del active[name]
            n_frames += 1
            if not active:
                break
    except MediaError as exc:
        for name in active:
            results[name] = ClipResult.failed(name, str(exc))
        return results
    except Exception as exc:  # the face tracker on a frame: this clip fails, the run goes on
        for name in active:
            results[name] = ClipResult.failed(name, f"{video_path}: frame {n_frames}: {one_line(exc)}")
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
            res = ClipResult.failed(name, one_line(exc))
        if summary is not None and m.needs & {"faces", "landmarks"}:
            res.details.setdefault("face_tracks", _summary_dict(summary))
        results[name] = res
    return results


def _safe(fn, name):
    try:
        return fn()
    except Exception as exc:
        return one_line(exc)


def _summary_dict(summary) -> dict:
    try:
        d = asdict(summary)
    except TypeError:
        d = dict(vars(summary))
    return json.loads(dumps(d))


# --------------------------------------------------------------------------- the whole job


def score(
    generated_dir: str | os.PathLike,
    *,
    benchmark=None,
    data_root: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    metrics: list[str] | None = None,
    options: EngineOptions | None = None,
    workers: int = 1,
    executor=None,
    clips: list[str] | None = None,
    limit: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    strict: bool = False,
    echo: Callable[[str], None] | None = None,
) -> dict:
    """Score a folder of ``<clip_id>.mp4`` files; returns the results.json object.

    ``benchmark``: a Benchmark, a manifest path, or None for InteractiveEyes. ``metrics``: names,
    or None for every registered metric that can run here (the others are listed as skipped with
    their reason). Resumes from ``<out>/per_clip.jsonl`` unless ``overwrite``. ``strict``: stop
    with ``StrictStop`` at the first problem that would make the exit code 1 (a requested metric
    that cannot run, a missing or failed clip). The results' ``exit_code`` and ``problems`` say
    whether every requested (clip, metric) is ok. ``executor``: where clips are computed
    (app/executors.py: ``make_executor("ray")``, ``devices_executor([...])``); None: the local
    executor with ``workers`` processes. Results do not depend on it.

    Raises ``ValueError``/``KeyError``/``FileNotFoundError`` for usage errors (bad names, options,
    folders) and ``errors.EnvironmentFailure`` (``FolderLocked``, ``DiskFull``,
    ``DeviceUnavailable``) when the environment stops the run.
    """
    from interactive_eyes.app.metric_setup import prepare_metrics
    from interactive_eyes.data import manifest as manifest_mod
    from interactive_eyes.data.paths import data_root as resolve_root

    t_start = time.time()
    options = options or EngineOptions()
    generated_dir = Path(generated_dir)
    if not generated_dir.is_dir():
        raise FileNotFoundError(f"{generated_dir}: not a folder of generated videos")
    if limit is not None and limit < 1:
        raise ValueError(f"--limit {limit}: must be a positive number of clips")
    from interactive_eyes.app.executors import LocalExecutor

    executor = executor or LocalExecutor(workers)
    if executor.name != "ray":  # a Ray driver may have no GPU of its own: the actors check theirs
        require_device(options.device)
    if benchmark is None or isinstance(benchmark, (str, os.PathLike)):
        benchmark = manifest_mod.load(benchmark)
    root = resolve_root(data_root, benchmark.name)
    clip_ids = list(clips) if clips else benchmark.clip_ids
    for cid in clip_ids:
        benchmark.clip(cid)  # unknown clip ids fail early, with a suggestion
    partial = bool(clips) or bool(limit)
    if limit:
        clip_ids = clip_ids[:limit]
    names = metric_names(metrics)
    runnable, skipped, references = prepare_metrics(names, options, root, requested=bool(metrics))
    if strict and metrics and skipped:
        name, reason = next(iter(skipped.items()))
        from interactive_eyes.app.errors import StrictStop

        raise StrictStop(f"--strict: metric {name} cannot run: {reason}")
    out = Path(out) if out else generated_dir / "ie-bench"
    out.mkdir(parents=True, exist_ok=True)
    from interactive_eyes.app.job import ScoreJob

    with exclusive(out, LOCK_FILE, "ie-bench score"):
        # every clip of the run is tracked the same way, whatever subset of metrics it still needs
        job = ScoreJob(generated_dir, benchmark, root, out, resolved(options, runnable), runnable, strict)
        return job.run(clip_ids, overwrite=overwrite, executor=executor, progress=progress, started=t_start,
                       skipped=skipped, references=references, partial=partial, requested=metrics)
