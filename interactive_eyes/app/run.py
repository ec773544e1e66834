"""The run driver: generate a benchmark's clips with one registered method, resumably.

``run_method("puppet", out_dir="runs/puppet")`` writes ``<out>/<clip_id>.mp4`` for every clip
and keeps ``<out>/run.json`` up to date after every clip (written to a temporary file and
renamed, so it is always complete). Resuming: a clip is generated again only if it has no
``ok`` entry, its file is missing or differs from the recorded size and sha256, or its reference
frame changed (content hash). A failure of one clip is recorded (one-line reason, traceback in
``<out>/logs/<clip_id>.txt``) and the other clips go on. Killing a run at any point and running
it again gives the same outputs with nothing duplicated: videos are written under temporary names
and renamed, and leftovers of a killed run are removed at the next start.

A run folder holds one configuration (method, version, parameters, seed, benchmark); running a
different one into the same folder is refused unless ``overwrite=True``, which discards the old
results.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import os
import traceback
from pathlib import Path
from typing import Any, Iterable

from interactive_eyes.app import errors as _errors
from interactive_eyes.download import sha256_file as _sha256

log = logging.getLogger(__name__)

RUN_SCHEMA = "ie-bench/run"
RUN_SCHEMA_VERSION = 1
RUN_FILE = "run.json"
LOCK_FILE = ".ie-bench-run.lock"
REFERENCE_EXTENSIONS = (".png", ".jpg", ".jpeg")


class RunError(RuntimeError):
    """A run that cannot start; the message is one line naming the file or folder."""


class MethodNotConfigured(RunError):
    """A foreign method whose checkout, environment or weights are not set up (an environment
    error); the message names the exact keys to set."""


class FolderLocked(RunError, _errors.FolderLocked):
    """Another process writes to the run folder (an environment error, exit 3)."""


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def reference_frame_candidates(clip_id: str, reference_frames=None, data_root=None) -> list[Path]:
    """Where the reference frame of ``clip_id`` is looked for, in order.

    ``reference_frames``: a folder of ``<clip_id>.png|jpg``; otherwise ``<data_root>/frames/``,
    where ``ie-bench data fetch --frames`` writes them.
    """
    folder = Path(reference_frames) if reference_frames is not None else Path(data_root) / "frames"
    return [folder / f"{clip_id}{ext}" for ext in REFERENCE_EXTENSIONS]


def find_reference_frame(clip_id: str, reference_frames=None, data_root=None) -> Path | None:
    for p in reference_frame_candidates(clip_id, reference_frames, data_root):
        if p.is_file():
            return p
    return None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _write_json_atomic(path: Path, doc: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@contextlib.contextmanager
def _exclusive(out_dir: Path):
    """One writer per run folder: the advisory lock ``score`` uses too (app/lock.py; released by
    the OS if the process dies)."""
    from interactive_eyes.app.lock import exclusive

    try:
        with exclusive(out_dir, LOCK_FILE, "ie-bench run"):
            yield
    except _errors.FolderLocked as exc:
        if isinstance(exc, FolderLocked):
            raise
        raise FolderLocked(str(exc)) from None


def _remove_leftovers(out_dir: Path) -> None:
    """Temporary files of a killed run: ``.<clip>.mp4.tmp<pid>.mp4`` (write_video), ``.run.json.tmp<pid>``."""
    for p in out_dir.glob(".*.tmp*"):
        if p.is_file():
            p.unlink()


def _environment() -> dict[str, Any]:
    import importlib.metadata as md
    import platform
    import sys

    from interactive_eyes import __version__

    def version(dist):
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            return None

    return {
        "ie_bench": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": {d: version(d) for d in ("numpy", "av", "mediapipe", "ai-edge-litert", "opencv-contrib-python", "pillow", "torch")},
    }


def _config(method, seed: int, bench) -> dict[str, Any]:
    """What must be equal for earlier results in a folder to be reused."""
    return {
        "method": method.name,
        "mode": getattr(method, "mode", "native"),  # "composite": per-person crops pasted back (spec §5.6)
        "version": method.version,
        "params": method.params(),
        "seed": int(seed),
        "benchmark": {"name": bench.name, "version": bench.version, "sha256": bench.sha256},
    }


def _config_difference(old: dict, new: dict) -> str | None:
    for key in ("method", "version", "params", "seed"):
        if old.get(key) != new[key]:
            return f"{key} {old.get(key)!r} (now {new[key]!r})"
    if (old.get("benchmark") or {}).get("sha256") != new["benchmark"]["sha256"]:
        return f"benchmark {(old.get('benchmark') or {}).get('name')!r} with another manifest sha256"
    return None


def _load_previous(run_file: Path) -> dict | None:
    if not run_file.exists():
        return None
    try:
        doc = json.loads(run_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunError(f"{run_file}: not valid JSON ({exc}); remove it or use --overwrite") from None
    if not isinstance(doc, dict) or doc.get("schema") != RUN_SCHEMA or not isinstance(doc.get("clips"), dict):
        raise RunError(f"{run_file}: not an ie-bench run file; remove it or use --overwrite")
    return doc


def _reusable(entry: dict | None, video: Path, ref_sha: str | None) -> bool:
    if not entry or entry.get("status") != "ok" or not video.is_file():
        return False
    if video.stat().st_size != entry.get("bytes"):
        return False
    if entry.get("reference_sha256") != ref_sha:
        return False
    return _sha256(video) == entry.get("sha256")


def _select_clips(bench, clips: Iterable[str] | None, limit: int | None):
    if clips:
        seen, selected = set(), []
        for cid in clips:
            if cid not in seen:
                seen.add(cid)
                selected.append(bench.clip(cid))  # KeyError with a did-you-mean hint
    else:
        selected = list(bench.clips)
    if limit is not None:
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        selected = selected[:limit]
    return selected


def run_method(
    method_name,
    *,
    benchmark=None,
    out_dir: str | os.PathLike,
    reference_frames: str | os.PathLike | None = None,
    data_root: str | os.PathLike | None = None,
    clips: Iterable[str] | None = None,
    limit: int | None = None,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = True,
    params: dict[str, Any] | None = None,
    method_config: str | os.PathLike | None = None,
    composite: bool = False,
    executor=None,
) -> dict[str, Any]:
    """Generate the selected clips of ``benchmark`` with a method; returns run.json's content.

    ``method_name``: a registered name (``ie-bench methods``), or a ``Method`` instance (then
    ``params`` must be None).
    ``benchmark``: a loaded ``Benchmark``, a manifest path or shipped name, or None (the default
    benchmark). ``clips``: clip ids to run (default all), ``limit``: only the first N of them.
    ``params``: overrides of the method's parameters. ``overwrite``: regenerate the selected clips
    even when done, and accept a folder holding another configuration (its results are removed).
    ``method_config``: the TOML file of foreign methods' checkouts/environments/weights (default
    ``$IE_BENCH_HOME/methods.toml``; ``params`` override it). A method that is not configured
    raises ``MethodNotConfigured`` before any clip. ``composite``: run a single-person method
    per person on crops and paste the results back (spec §5.6), recorded as ``<name>+composite``.
    ``executor``: where clips are generated (app/executors.py: ``--devices``, ``--executor ray``;
    every worker writes into ``out_dir``, so it must see that folder); None: in this process, in
    order. Only this process writes run.json.
    """
    from interactive_eyes.baselines import METHODS
    from interactive_eyes.baselines.base import Item
    from interactive_eyes.data import manifest
    from interactive_eyes.data.paths import data_root as resolve_root

    if isinstance(method_name, str):
        cls = METHODS.get(method_name)
        if hasattr(cls, "missing"):  # a foreign method: checkout, environment, weights from methods.toml
            from interactive_eyes.baselines.method_config import ConfigError, merged_params

            try:
                params, config_path = merged_params(cls, params, method_config)
            except ConfigError as exc:
                raise MethodNotConfigured(str(exc)) from None
            method = cls(**params)
            missing = method.missing()
            if missing:
                from interactive_eyes.baselines.method_config import not_configured_message

                raise MethodNotConfigured(not_configured_message(cls.name, missing, config_path))
        else:
            method = cls(**(params or {}))
    else:
        if params:
            raise ValueError("params can only be given with a method name, not with a Method instance")
        method = method_name
    if composite:
        from interactive_eyes.baselines.composite import CompositeMethod

        method = CompositeMethod(method)
    bench = benchmark if isinstance(benchmark, manifest.Benchmark) else manifest.load(benchmark)
    root = resolve_root(data_root, bench.name)
    selected = _select_clips(bench, clips, limit)
    prepare = getattr(method, "prepare", None)
    if callable(prepare):  # optional hook: e.g. find every model file before the first clip (raises)
        prepare()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    run_file = out / RUN_FILE
    config = _config(method, seed, bench)

    with _exclusive(out):
        _remove_leftovers(out)
        previous = _load_previous_or_none(run_file, overwrite)
        entries: dict[str, dict] = {}
        created = _now()
        if previous is not None:
            diff = _config_difference(previous, config)
            if diff and not overwrite:
                raise RunError(f"{run_file}: this folder holds a run with {diff}; use --overwrite or another --out")
            if diff:  # overwrite with another configuration: the old results are no longer valid
                for cid, e in previous["clips"].items():
                    f = out / str(e.get("file") or f"{cid}.mp4")
                    if f.parent == out and f.is_file():
                        f.unlink()
            else:
                entries = dict(previous["clips"])
                created = previous.get("created", created)

        doc: dict[str, Any] = {
            "schema": RUN_SCHEMA,
            "schema_version": RUN_SCHEMA_VERSION,
            **config,
            "base_method": method.inner.name if hasattr(method, "inner") else method.name,
            "capabilities": method.capabilities.to_dict(),
            "benchmark": {**config["benchmark"], "path": bench.path, "n_clips": len(bench.clips)},
            "data_root": str(root),
            "reference_frames": str(reference_frames) if reference_frames is not None else str(root / "frames"),
            "environment": _environment(),
            "created": created,
            "updated": created,
            "last_invocation": {
                "started": _now(),
                "finished": None,
                "clips": [c.id for c in selected],
                "limit": limit,
                "overwrite": bool(overwrite),
                "generated": 0,
                "reused": 0,
            },
        }
        order = {cid: i for i, cid in enumerate(bench.clip_ids)}

        def save() -> None:
            doc["clips"] = {k: entries[k] for k in sorted(entries, key=lambda k: order.get(k, len(order)))}
            done = [c for c in bench.clip_ids if c in entries]
            counts = {s: sum(1 for e in entries.values() if e.get("status") == s) for s in ("ok", "failed", "skipped")}
            counts["not_run"] = len(bench.clip_ids) - len(done)
            doc["counts"] = counts
            doc["partial"] = counts["not_run"] > 0  # some clips were never attempted (--limit / --clips)
            doc["complete"] = counts["ok"] == len(bench.clip_ids)
            doc["updated"] = _now()
            _write_json_atomic(run_file, doc)

        save()
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(selected), desc=method.name, unit="clip", leave=False)
        def record(clip, entry: dict) -> None:
            if entry.pop("_reused", False):
                doc["last_invocation"]["reused"] += 1
            else:
                doc["last_invocation"]["generated"] += entry["status"] == "ok"
                entries[clip.id] = entry
                save()
            if bar is not None:
                bar.set_postfix_str(f"{clip.id}: {entry['status']}")
                bar.update(1)

        try:
            if executor is None:
                for clip in selected:
                    record(clip, _run_clip(method, clip, out, root, reference_frames, seed, entries.get(clip.id),
                                           overwrite, Item))
            else:
                from interactive_eyes.app.executors import run_spec

                tasks = [(clip, str(out), str(root), reference_frames, seed, entries.get(clip.id), overwrite)
                         for clip in selected]

                def lost(i: int, reason: str) -> None:  # its worker died on every attempt
                    record(selected[i], {"status": "failed", "reason": reason, "file": f"{selected[i].id}.mp4",
                                         "finished": _now()})

                executor.map(run_spec(method), tasks, lambda i, r: record(selected[i], r[1]), lost,
                             local_state=method)
        finally:
            if bar is not None:
                bar.close()
        doc["last_invocation"]["finished"] = _now()
        save()
    return doc


def _load_previous_or_none(run_file: Path, overwrite: bool) -> dict | None:
    try:
        return _load_previous(run_file)
    except RunError:
        if overwrite:
            return None
        raise


def _run_clip(method, clip, out: Path, root: Path, reference_frames, seed: int, previous: dict | None,
              overwrite: bool, Item) -> dict[str, Any]:
    """Generate one clip (or reuse it); never raises for a problem of this clip alone."""
    import time

    video = out / f"{clip.id}.mp4"
    ref = find_reference_frame(clip.id, reference_frames, root)
    ref_sha = _sha256(ref) if ref is not None else None
    if not overwrite and _reusable(previous, video, ref_sha):
        return {**previous, "_reused": True}
    if video.exists():  # stale: from a failed, changed or unrecorded attempt
        video.unlink()
    log_file = out / "logs" / f"{clip.id}.txt"
    entry: dict[str, Any] = {
        "status": None,
        "reason": None,
        "file": video.name,
        "reference_frame": str(ref) if ref is not None else None,
        "reference_sha256": ref_sha,
        "started": _now(),
    }
    t0 = time.perf_counter()
    try:
        if ref is None and method.capabilities.needs_reference_frame:
            looked = reference_frame_candidates(clip.id, reference_frames, root)
            raise _ClipProblem(
                "failed",
                f"{looked[0].parent}/{clip.id}.png|jpg|jpeg: reference frame not found "
                "(run `ie-bench data fetch --frames` or pass --reference-frames DIR)",
            )
        try:
            item = Item.from_clip(clip, root, ref)
        except (FileNotFoundError, OSError, ValueError) as exc:
            raise _ClipProblem("failed", " ".join(str(exc).split())) from None
        reason = method.check(item)
        if reason:  # decided from the capabilities, nothing launched; recorded, never dropped
            entry["decision"] = "unsupported"
            raise _ClipProblem("skipped", reason)
        info = method.generate(item, video, seed=seed)
        if not video.is_file():
            raise _ClipProblem("failed", f"{video}: {method.name} returned without writing the video")
        entry.update(status="ok", bytes=video.stat().st_size, sha256=_sha256(video), info=info)
        if log_file.exists():
            log_file.unlink()
    except _ClipProblem as p:
        entry.update(status=p.status, reason=p.reason)
    except Exception as exc:  # one clip's failure never stops the run
        entry.update(status="failed", reason=_one_line(exc))
        details = getattr(exc, "details", None)  # runner.JobFailed: argv, return code, stderr tail, logs
        if isinstance(details, dict):
            entry["job"] = details
        log_file.parent.mkdir(exist_ok=True)
        log_file.write_text(traceback.format_exc())
        entry["log"] = str(log_file.relative_to(out))
        log.warning("%s: %s", clip.id, entry["reason"])
    entry["seconds"] = round(time.perf_counter() - t0, 3)
    entry["finished"] = _now()
    if entry["status"] != "ok" and video.exists():
        video.unlink()
    return entry


class _ClipProblem(Exception):
    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason
