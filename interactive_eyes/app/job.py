"""One locked ``score`` run over an output folder: plan, check, resume, compute, record.

``engine.score`` validates the arguments, prepares the metrics and takes the folder's lock;
``ScoreJob.run`` then does the work:

1. match files to clips (``checks.plan_inputs``) and apply the per-clip contract
   (``checks.check_video``, the one ``validate`` uses) to every file, cached or not; a clip that
   fails it gets a ``failed`` record with the reason for every metric (an unreadable file has no
   content hash, so its record has ``cache_key: null`` and is written once per reason);
2. hash each file and look every (clip, metric) up by cache key; compute the rest, one decode
   per clip, on the run's executor (this process, worker processes, Ray actors: app/executors.py);
3. carry forward metrics recorded earlier for the same inputs (app/metric_setup.py) and write
   results.json with the exit code (app/results.py).
"""

from __future__ import annotations

import json
import logging
import time

from interactive_eyes.app import engine
from interactive_eyes.app.checks import ClipPlan, check_video, one_line, plan_inputs
from interactive_eyes.app.store import ResultStore, dumps, save_npz_atomic
from interactive_eyes.download import sha256_file as file_sha256

log = logging.getLogger(__name__)


class ScoreJob:
    """One locked ``score`` run over an output folder: plan, check, resume, compute, record."""

    def __init__(self, generated_dir, benchmark, root, out, options, runnable, strict):
        self.generated_dir, self.benchmark, self.root, self.out = generated_dir, benchmark, root, out
        self.options, self.by_name, self.strict = options, {m.name: m for m in runnable}, strict
        self.records: dict[tuple[str, str], dict] = {}

    def key(self, plan: ClipPlan, metric) -> str:
        return engine.cache_key(plan.video_sha256, engine.clip_fingerprint(plan.clip), metric, self.options)

    def run(self, clip_ids, *, overwrite, executor, progress, started, skipped, references, partial, requested):
        from tqdm import tqdm

        from interactive_eyes.app.metric_setup import previous_metrics
        from interactive_eyes.app.results import build_results

        per_clip_path = self.out / engine.PER_CLIP_FILE
        if overwrite and per_clip_path.exists():
            per_clip_path.unlink()
        self.store = ResultStore(per_clip_path)
        all_records = list(self.store.records())
        done = {r["cache_key"]: r for r in all_records if r.get("cache_key")}
        self.keyless = {(r.get("clip"), r.get("metric"), r.get("reason")) for r in all_records if not r.get("cache_key")}

        self.plans, extras = plan_inputs(self.generated_dir, self.benchmark, clip_ids)
        for e in extras:
            hint = f" (did you mean {e['did_you_mean']}?)" if e["did_you_mean"] else ""
            log.warning("%s: not a clip of %s, ignored%s", self.generated_dir / e["file"], self.benchmark.name, hint)
        todo = self._plan(done)
        if self.records:
            log.info("resuming: %d (clip, metric) results already in %s", len(self.records), per_clip_path)

        from interactive_eyes.quiet import progress_options  # one final line in logs (issue 14)

        bar = tqdm(total=len(todo), desc="score", unit="clip", disable=not progress or not todo, **progress_options())
        try:
            self._compute(todo, executor, bar)
        finally:
            bar.close()

        recorded = {r.get("metric") for r in all_records}
        carried, carried_records = previous_metrics(recorded, set(self.by_name), self.options,
                                                    self.plans, done, self.key)
        self.records.update(carried_records)
        return build_results(
            benchmark=self.benchmark, generated_dir=self.generated_dir, out=self.out,
            metrics=list(self.by_name.values()) + carried, carried=[m.name for m in carried],
            skipped_metrics=skipped, requested=requested, plans=self.plans, records=self.records,
            extras=extras, references=references, partial=partial, options=self.options, started=started,
        )

    def _compute(self, todo: list[ClipPlan], executor, bar) -> None:
        """Every clip still to do on ``executor`` (app/executors.py); results are recorded here,
        in the driver, as each clip completes, wherever it ran."""
        from interactive_eyes.app.executors import score_spec
        from interactive_eyes.metrics.base import ClipResult

        def on_result(i, out):
            cid, res, dt = out
            self._record_all(cid, res, dt)
            bar.update(1)

        def on_lost(i, reason):  # its worker died on every attempt: this clip fails, the run goes on
            plan = todo[i]
            self._record_all(plan.clip.id, {n: ClipResult.failed(n, reason) for n in plan.todo}, 0.0)
            bar.update(1)

        tasks = [(str(p.video), p.clip, p.todo, str(self.root), p.info) for p in todo]
        executor.map(score_spec(self.by_name, self.options), tasks, on_result, on_lost,
                     local_state={"metrics": self.by_name, "options": self.options})

    def _plan(self, done: dict) -> list[ClipPlan]:
        """Check every file (the shared contract) and look its results up; -> the clips to compute."""
        from interactive_eyes.metrics.base import ClipResult

        todo = []
        decided = engine.run_decisions(self.generated_dir)  # clips `ie-bench run` did not generate
        for cid, plan in self.plans.items():
            plan.info = None
            if plan.video is None:
                if cid in decided and plan.problem and plan.problem.endswith(": missing file"):
                    plan.problem = decided[cid]["reason"]
                    for m in self.by_name.values():
                        self._record_not_generated(cid, m, decided[cid])
                self._strict_stop(cid, None, plan.problem)
                continue
            checked = check_video(plan.video, plan.clip, require_audio=not self.options.allow_silent)
            if checked.info is not None:  # it opened: hash it (a read error now is still this clip's)
                try:
                    plan.video_sha256 = file_sha256(plan.video)
                except OSError as exc:
                    checked.problems.append(("error", f"cannot read the file ({exc.strerror or one_line(exc)})"))
            if not checked.ok:
                plan.problem = checked.reason
                for m in self.by_name.values():
                    self._record(cid, ClipResult.failed(m.name, checked.reason), 0.0, done)
                continue
            plan.info = checked.info
            for m in self.by_name.values():
                rec = done.get(self.key(plan, m))
                if rec is not None:
                    self.records[(cid, m.name)] = rec
                    if rec.get("status") != "ok":
                        self._strict_stop(cid, m.name, rec.get("reason"))
                else:
                    plan.todo.append(m.name)
            if plan.todo:
                todo.append(plan)
        return todo

    def _record_all(self, cid: str, res: dict, elapsed: float) -> None:
        for r in res.values():
            self._record(cid, r, elapsed)

    def _record(self, cid: str, res, elapsed: float, done: dict | None = None) -> None:
        plan = self.plans[cid]
        m = self.by_name[res.metric]
        key = self.key(plan, m) if plan.video_sha256 else None
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
        previous = (done or {}).get(key) if key else None
        if previous is not None and (previous.get("status"), previous.get("reason")) == (res.status, res.reason):
            rec = previous  # the same failure as last time: nothing new to write
        elif key is None and (cid, m.name, res.reason) in self.keyless:
            pass  # an unreadable file (no content hash) failing as before: not written twice
        else:
            if res.stats is not None and res.status == "ok":
                stats_path = self.out / "stats" / m.name / f"{key}.npz"
                save_npz_atomic(stats_path, res.stats)  # before the line: a line implies its stats
                rec["stats"] = str(stats_path.relative_to(self.out))
            rec = json.loads(_serialisable(rec))  # exactly what a resumed run will read back
            self.store.append(rec)
        self.records[(cid, m.name)] = rec
        if rec["status"] != "ok":
            self._strict_stop(cid, m.name, rec.get("reason"))

    def _record_not_generated(self, cid: str, m, decided: dict) -> None:
        """A clip the run declined or failed: one keyless record per metric with the run's status
        (``unsupported`` / ``not_generated``) and reason, written once per reason."""
        rec = {"clip": cid, "metric": m.name, "metric_version": m.version, "status": decided["status"],
               "reason": decided["reason"], "value": None, "per_person": None, "details": {"run_method": decided["method"]},
               "video": None, "video_sha256": None, "cache_key": None, "seconds": 0.0}
        if (cid, m.name, rec["reason"]) not in self.keyless:
            self.store.append(rec)
            self.keyless.add((cid, m.name, rec["reason"]))
        self.records[(cid, m.name)] = rec

    def _strict_stop(self, cid: str, metric: str | None, reason: str | None) -> None:
        if self.strict:
            from interactive_eyes.app.errors import StrictStop

            what = f"clip {cid}" + (f", metric {metric}" if metric else "")
            raise StrictStop(f"--strict: {what}: {reason}")


def _serialisable(rec: dict) -> str:
    """The record as JSON; a NaN or infinite number (not valid JSON) fails this clip for this metric
    with a reason instead of aborting the run."""
    try:
        return dumps(rec)
    except ValueError as exc:
        bad = {**rec, "status": "failed", "value": None, "per_person": None, "details": {}, "stats": None,
               "reason": f"{rec['video']}: {rec['metric']} returned a non-finite number ({exc})"}
        bad.pop("stats")
        return dumps(bad)
