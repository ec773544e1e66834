"""results.json: aggregation over clips, provenance, and the printed table.

Schema ``ie-bench/results`` version 1, documented in docs/results_schema.md. Per-clip metrics
report the mean over the clips that scored, a 95% percentile-bootstrap interval over clips
(2000 resamples, seed 0), and the counts n_ok / n_failed / n_expected: a failed or missing clip
is counted, never dropped silently and never scored 0. Set-level metrics (FID, FVD) are computed
from the merged sufficient statistics of the clips that scored.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

from interactive_eyes.app.store import write_json_atomic
from interactive_eyes.stats.bootstrap import DEFAULT_LEVEL, DEFAULT_RESAMPLES, DEFAULT_SEED, bootstrap_ci

SCHEMA = "ie-bench/results"
SCHEMA_VERSION = 1


def git_revision() -> str | None:
    """The ie-bench source revision when running from a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=here, capture_output=True, text=True, timeout=5).stdout
        return out + ("-dirty" if dirty.strip() else "")
    except Exception:
        return None


def _numeric(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)


def aggregate_metric(metric, clip_ids: list[str], records: dict, plans: dict, out: Path,
                     reference: dict | None = None) -> dict:
    """One metric over the expected clips."""
    ok, failed = [], []
    for cid in clip_ids:
        rec = records.get((cid, metric.name))
        if rec is None:
            problem = plans[cid].problem if cid in plans else None
            failed.append({"clip": cid, "reason": problem or "not scored"})
        elif rec["status"] == "ok" and (rec.get("value") is not None or metric.set_level):
            ok.append(rec)
        else:
            f = {"clip": cid, "reason": rec.get("reason") or rec["status"]}
            if rec["status"] not in ("failed", "ok"):  # e.g. "unsupported": the method declined the clip (run.json)
                f["status"] = rec["status"]
            failed.append(f)
    entry: dict[str, Any] = {
        "higher_is_better": metric.higher_is_better,
        "version": metric.version,
        "set_level": metric.set_level,
        "n_expected": len(clip_ids),
        "n_ok": len(ok),
        "n_failed": len(failed),
        "params": metric.params(),
        "weights": metric.weights(),
        "failures": failed,
    }
    if metric.set_level:
        stats = []
        for rec in ok:
            with np.load(out / rec["stats"]) as z:
                stats.append({k: z[k] for k in z.files})
        if reference is not None:
            entry["reference"] = {"source": reference["source"], "sha256": reference["sha256"]}
        if stats:
            res = metric.reduce(stats, reference["arrays"] if reference else None)
            entry.update(value=res.value, ci95=None, n_samples=res.n_samples, details=res.details)
            entry["ci95_note"] = "no bootstrap interval for set-level metrics (one value from pooled statistics)"
        else:
            entry.update(value=None, ci95=None)
        return entry

    values = [float(r["value"]) for r in ok]
    entry["value"] = float(np.mean(values)) if values else None
    ci = bootstrap_ci(values) if values else None
    entry["ci95"] = list(ci) if ci else None
    # per-person means (role -> mean over the clips where that person has a value)
    per_person: dict[str, list[float]] = {}
    for r in ok:
        for role, v in (r.get("per_person") or {}).items():
            if _numeric(v):
                per_person.setdefault(role, []).append(float(v))
    entry["per_person"] = {role: {"value": float(np.mean(v)), "n": len(v)} for role, v in per_person.items()}
    # secondary values the metric declares (e.g. interactivity_25fps, sync_d)
    extra: dict[str, list[float]] = {}
    for r in ok:
        for k in getattr(metric, "secondary", ()):
            v = (r.get("details") or {}).get(k)
            if _numeric(v):
                extra.setdefault(k, []).append(float(v))
    entry["secondary"] = {
        k: {"value": float(np.mean(v)), "ci95": list(bootstrap_ci(v) or []) or None, "n": len(v)}
        for k, v in extra.items()
        if len(v) == len(ok)
    }
    entry["per_clip"] = {r["clip"]: r["value"] for r in ok}
    return entry


def build_results(
    *,
    benchmark,
    generated_dir: Path,
    out: Path,
    metrics: list,
    skipped_metrics: dict[str, str],
    plans: dict,
    requested: list[str] | None = None,
    carried: list[str] = (),
    records: dict,
    extras: list[dict],
    partial: bool,
    references: dict | None = None,
    options,
    started: float,
) -> dict:
    from interactive_eyes import __version__
    from interactive_eyes.app.cmd_env import collect_environment

    clip_ids = list(plans)
    run_json = generated_dir / "run.json"
    method = None
    if run_json.is_file():
        try:
            method = json.loads(run_json.read_text())
        except json.JSONDecodeError:
            method = {"error": f"{run_json}: not valid JSON"}
    env = collect_environment()
    results = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "ie_bench_version": __version__,
        "git_revision": git_revision(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "wall_seconds": round(time.time() - started, 3),
        "benchmark": {"name": benchmark.name, "version": benchmark.version, "manifest_sha256": benchmark.sha256,
                      "manifest": benchmark.path},
        "generated_dir": str(generated_dir),
        "method": (method or {}).get("method") if isinstance(method, dict) else None,
        # "composite": a single-person method run per person and pasted back (spec §5.6)
        "mode": (method or {}).get("mode") if isinstance(method, dict) else None,
        "base_method": (method or {}).get("base_method") if isinstance(method, dict) else None,
        "run": method,
        "partial": partial,
        "clips": clip_ids,
        "n_clips": len(clip_ids),
        "n_videos_found": sum(1 for p in plans.values() if p.video is not None),
        "extra_files": extras,
        "options": {"landmark_backend": options.landmark_backend, "device": options.device,
                    "metric_options": options.metric_options},
        "bootstrap": {"resamples": DEFAULT_RESAMPLES, "level": DEFAULT_LEVEL, "seed": DEFAULT_SEED,
                      "method": "percentile bootstrap over clips"},
        "metrics": {m.name: aggregate_metric(m, clip_ids, records, plans, out, (references or {}).get(m.name))
                    for m in metrics},
        "skipped_metrics": skipped_metrics,
        "requested_metrics": list(requested) if requested else None,
        "environment": {"python": env["python"], "platform": env["platform"], "packages": env["packages"],
                        "cuda": env["cuda"]},
    }
    for name in carried:  # not computed by this invocation: its records for these inputs were already there
        results["metrics"][name]["carried_forward"] = True
    results["exit_code"], results["problems"] = outcome(results)
    write_json_atomic(out / "results.json", results)
    return results


def outcome(results: dict) -> tuple[int, list[str]]:
    """The exit code of a completed ``score`` and the one-line problems behind it.

    0: every requested (clip, metric) is ok. 1: something was asked for and is not there: a clip
    of a computed metric failed or is missing, a metric named with ``--metrics`` was skipped, or
    nothing was scored at all (no clip, or no metric could run). Metrics carried forward from
    earlier runs, and metrics of the default set that cannot run here (listed under
    ``skipped_metrics``), do not change the code.
    """
    from interactive_eyes.app.exit_codes import OK, PARTIAL

    problems = []
    computed = {n: m for n, m in results["metrics"].items() if not m.get("carried_forward")}
    if not results["n_clips"]:
        problems.append("no clips were selected")
    if not computed:
        problems.append("nothing was scored: no metric could run" if results.get("skipped_metrics")
                        else "nothing was scored: no metric was selected")
    for name, m in computed.items():
        if m["n_failed"]:
            problems.append(f"{name}: {m['n_failed']} of {m['n_expected']} clip(s) failed or missing")
    for name in results.get("requested_metrics") or []:
        if name in results.get("skipped_metrics", {}):
            problems.append(f"{name}: skipped ({results['skipped_metrics'][name]})")
    return (PARTIAL if problems else OK), problems


def format_table(results: dict) -> str:
    """metric, direction, value ± CI half-width, n_ok/n_expected; skipped metrics listed after."""
    rows = [("metric", "", "value", "95% CI", "n_ok/n")]
    for name, m in results["metrics"].items():
        arrow = "↑" if m["higher_is_better"] else "↓"
        value = "—" if m.get("value") is None else f"{m['value']:.4g}"
        ci = m.get("ci95")
        ci_s = f"[{ci[0]:.4g}, {ci[1]:.4g}]" if ci else "—"
        rows.append((name, arrow, value, ci_s, f"{m['n_ok']}/{m['n_expected']}"))
        for sec, s in (m.get("secondary") or {}).items():
            sci = s.get("ci95")
            rows.append((f"  {sec}", "", f"{s['value']:.4g}", f"[{sci[0]:.4g}, {sci[1]:.4g}]" if sci else "—", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for name, m in results["metrics"].items():
        if m.get("carried_forward"):
            lines.append(f"{name}: from an earlier run on the same inputs (not computed this time)")
    for name, reason in results.get("skipped_metrics", {}).items():
        lines.append(f"skipped {name}: {reason}")
    failed: dict[tuple[str, str], list[str]] = {}  # one line per clip and reason, naming its metrics
    for name, m in results["metrics"].items():
        if not m.get("carried_forward"):
            for f in m["failures"]:
                failed.setdefault((f["clip"], f["reason"], f.get("status", "failed")), []).append(name)
    for (clip, reason, status), names in failed.items():
        lines.append(f"{status} {clip} ({', '.join(names)}): {reason}")
    if results.get("partial"):
        lines.append("(partial run: --clips/--limit)")
    if results.get("problems"):
        lines.append(f"exit {results.get('exit_code')}: " + "; ".join(results["problems"]))
    return "\n".join(lines)
