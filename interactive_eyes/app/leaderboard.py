"""Leaderboard: one row per results.json, as CSV, Markdown (with ↑/↓), JSON and a PNG chart.

Rules that keep it from misleading (issue 14):

- A metric missing from a run (skipped, or no clip ok) is "n/a" in Markdown/PNG and empty in the
  CSV, never 0 (docs/results_schema.md).
- Every cell and every plotted point carries ``n_ok/n`` (clips scored / clips expected).
- An interval is shown only where results.json has one *and* at least ``MIN_CI_CLIPS`` clips
  scored (see there); the legend names the interval's method and that threshold.
- The title names the benchmark; runs of different benchmarks (name, version or manifest bytes)
  are refused in one table, or split into one table each with ``split=True``.
- Two runs with the same display name are told apart by their folder path (or, for two runs of
  one method, by the folder name after the method).
- Counts are integers in every output (pandas' nullable ``Int64``: ``2``, never ``2.0``).
- Partial runs (``--clips``/``--limit``) are refused unless explicitly allowed, because their
  means are over a different clip set.

The PNG (``leaderboard_plot.plot``) draws points with whiskers on per-metric axes fitted to the
values, so 1.0 vs 0.989 is visible.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

#: Below this many scored clips no interval is *shown* (it stays in CSV/JSON as results.json has
#: it). A percentile bootstrap of the mean over n clips is the range of the values for n = 2
#: (the resampled means are a, (a+b)/2, b with probabilities 1/4, 1/2, 1/4, so the 2.5 % and 97.5 %
#: quantiles are a and b), and for n = 3 or 4 the extreme resamples still carry 3.7 % / 0.4 %+ of
#: the mass, so the "95 % CI" is close to min..max: drawing it would look like a measured
#: uncertainty. From 5 clips on the interval is narrower than the range and is drawn.
MIN_CI_CLIPS = 5

SCHEMA = "ie-bench/leaderboard"


class LeaderboardError(ValueError):
    """One line naming the file(s) and what is wrong."""


def _resolve(p: Path) -> Path:
    if p.is_dir():
        return p / "results.json" if (p / "results.json").exists() else p / "ie-bench" / "results.json"
    return p


def load_results(paths: list[str | os.PathLike], *, allow_partial: bool = False) -> list[dict]:
    runs = []
    for p in paths:
        p = _resolve(Path(p))
        try:
            data = json.loads(p.read_text())
        except FileNotFoundError:
            raise LeaderboardError(f"{p}: no such results file") from None
        except json.JSONDecodeError as exc:
            raise LeaderboardError(f"{p}: not valid JSON ({exc.msg})") from None
        if not isinstance(data, dict) or data.get("schema") != "ie-bench/results":
            raise LeaderboardError(f"{p}: not an ie-bench results file")
        if data.get("partial") and not allow_partial:
            raise LeaderboardError(f"{p}: partial run (--clips/--limit); pass --allow-partial to include it")
        data["_path"] = str(p)
        runs.append(data)
    if not runs:
        raise LeaderboardError("no results given")
    return runs


def benchmark_key(run: dict) -> tuple:
    b = run.get("benchmark") or {}
    return (b.get("name"), str(b.get("version")), b.get("manifest_sha256"))


def group_by_benchmark(runs: list[dict], *, split: bool = False) -> list[list[dict]]:
    """Runs grouped per benchmark, in first-seen order; more than one group without ``split`` is an error."""
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault(benchmark_key(r), []).append(r)
    if len(groups) > 1 and not split:
        desc = "; ".join(f"{k[0]} v{k[1]} (manifest {str(k[2])[:12]}): {', '.join(x['_path'] for x in g)}"
                         for k, g in groups.items())
        raise LeaderboardError(f"runs of different benchmarks cannot share one table ({desc}); "
                               "pass --split-benchmarks for one table each")
    return list(groups.values())


def _folder(run: dict) -> Path:
    if run.get("generated_dir"):
        return Path(run["generated_dir"])
    p = Path(run["_path"]).parent
    return p.parent if p.name == "ie-bench" else p


def labels(runs: list[dict]) -> list[str]:
    """Display names: the method from run.json, else the folder name; duplicates get the shortest
    folder path suffix that tells them apart (``a/myout``, ``b/myout``; ``static (run2)``)."""
    base = [str(r["method"]) if r.get("method") else _folder(r).name for r in runs]
    out = list(base)
    for name in set(base):
        idx = [i for i, b in enumerate(base) if b == name]
        if len(idx) < 2:
            continue
        parts = [_folder(runs[i]).resolve().parts for i in idx]
        depth = max(len(p) for p in parts)
        for k in range(2, depth + 1):
            tails = ["/".join(p[-k:]) for p in parts]
            if len(set(tails)) == len(tails):
                break
        else:  # the same folder more than once: numbered below
            continue
        if runs[idx[0]].get("method"):  # "static (run1)": the folder name alone, when that suffices
            names = [p[-1] for p in parts]
            tails = names if len(set(names)) == len(names) else tails
        for i, tail in zip(idx, tails):
            out[i] = f"{name} ({tail})" if runs[i].get("method") else tail
    seen: dict[str, int] = {}
    for i, lab in enumerate(out):  # same folder given twice: still unique
        seen[lab] = seen.get(lab, 0) + 1
        if seen[lab] > 1:
            out[i] = f"{lab} #{seen[lab]}"
    return out


def _ci_legend(runs: list[dict]) -> str:
    bs = {json.dumps(r.get("bootstrap") or {}, sort_keys=True) for r in runs}
    b = json.loads(bs.pop()) if len(bs) == 1 else {}
    level = b.get("level", 0.95)
    what = b.get("method", "bootstrap over clips")
    extra = f", {b['resamples']} resamples" if b.get("resamples") else ""
    return (f"[low, high]: {level:.0%} {what}{extra}; shown only when n_ok >= {MIN_CI_CLIPS}; "
            "n_ok/n = clips scored / clips expected")


def build_table(runs: list[dict]):
    """A pandas DataFrame: method (display label), benchmark, n_clips, coverage, and per metric
    value / ci_low / ci_high / n_ok / n (integers) / status ("ok", "failed", "skipped", "absent")."""
    import pandas as pd

    metric_names: list[str] = []
    directions: dict[str, bool] = {}
    for r in runs:
        for name, m in r["metrics"].items():
            if name not in metric_names:
                metric_names.append(name)
            directions[name] = bool(m["higher_is_better"])
    rows, notes = [], {}
    for r, label in zip(runs, labels(runs)):
        n = int(r["n_clips"])
        found = r.get("n_videos_found", n)
        row = {"method": label, "results": r["_path"], "benchmark": r["benchmark"]["name"],
               "benchmark_version": str(r["benchmark"].get("version")), "n_clips": n,
               "coverage": round(found / n, 4) if n else None, "partial": bool(r.get("partial"))}
        skipped = r.get("skipped_metrics") or {}
        for name in metric_names:
            m = r["metrics"].get(name)
            ci = (m or {}).get("ci95") or [None, None]
            value = None if m is None else m.get("value")
            row[name] = value
            row[f"{name}_ci_low"], row[f"{name}_ci_high"] = ci
            row[f"{name}_n_ok"] = None if m is None else m.get("n_ok")
            row[f"{name}_n"] = n if m is None else m.get("n_expected", n)
            if m is None:
                row[f"{name}_status"] = "skipped" if name in skipped else "absent"
                if name in skipped:
                    notes[(label, name)] = f"skipped: {skipped[name]}"
            elif value is None:
                row[f"{name}_status"] = "failed"
                fails = m.get("failures") or []
                if fails:
                    notes[(label, name)] = f"no clip ok (first: {fails[0].get('clip')}: {fails[0].get('reason')})"
            else:
                row[f"{name}_status"] = "ok"
        rows.append(row)
    df = pd.DataFrame(rows)
    for name in metric_names:
        for col in (f"{name}_n_ok", f"{name}_n"):
            df[col] = df[col].astype("Int64")
        for col in (name, f"{name}_ci_low", f"{name}_ci_high"):
            df[col] = df[col].astype("float64")
    df["n_clips"] = df["n_clips"].astype("Int64")
    # metrics skipped in every run have no column (no direction, no value): named with the reason
    not_scored: dict[str, str] = {}
    for r in runs:
        for name, reason in (r.get("skipped_metrics") or {}).items():
            if name not in metric_names:
                not_scored.setdefault(name, reason)
    b = runs[0]["benchmark"]
    df.attrs.update(metrics=metric_names, higher_is_better=directions, notes=notes, not_scored=not_scored,
                    benchmark={"name": b["name"], "version": str(b.get("version")),
                               "manifest_sha256": b.get("manifest_sha256")},
                    ci_legend=_ci_legend(runs))
    return df


def _present(x) -> bool:
    import pandas as pd

    return x is not None and not pd.isna(x)


def show_ci(row, metric: str) -> bool:
    """Whether the interval of ``metric`` in ``row`` is shown (exists and n_ok >= MIN_CI_CLIPS)."""
    n_ok = row[f"{metric}_n_ok"]
    return (_present(row[f"{metric}_ci_low"]) and _present(row[f"{metric}_ci_high"])
            and _present(n_ok) and int(n_ok) >= MIN_CI_CLIPS)


def n_text(row, metric: str) -> str:
    n_ok = row[f"{metric}_n_ok"]
    return f"{int(n_ok) if _present(n_ok) else 0}/{int(row[f'{metric}_n'])}"


def title(df) -> str:
    b = df.attrs["benchmark"]
    return f"ie-bench leaderboard: {b['name']} v{b['version']}"


def to_csv(df, path: str | os.PathLike | None = None) -> str:
    text = df.to_csv(index=False, na_rep="")
    if path:
        Path(path).write_text(text)
    return text


def to_markdown(df) -> str:
    metrics = df.attrs["metrics"]
    hib = df.attrs["higher_is_better"]
    head = ["method", "clips", "coverage"] + [f"{m} {'↑' if hib[m] else '↓'}" for m in metrics]
    lines = [f"**{title(df)}**", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in df.iterrows():
        cov = r["coverage"]
        cells = [str(r["method"]), str(int(r["n_clips"])), f"{cov:.0%}" if _present(cov) else "n/a"]
        for m in metrics:
            v = r[m]
            n = n_text(r, m)
            if not _present(v):
                cells.append(f"n/a ({n})")
                continue
            ci = f" [{r[f'{m}_ci_low']:.4g}, {r[f'{m}_ci_high']:.4g}]" if show_ci(r, m) else ""
            cells.append(f"{v:.4g}{ci} ({n})")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", df.attrs["ci_legend"] + "."]
    for (label, m), note in df.attrs["notes"].items():
        lines.append(f"- {label} / {m}: {note}")
    for m, reason in df.attrs["not_scored"].items():
        lines.append(f"- {m}: not scored in any run ({reason})")
    return "\n".join(lines) + "\n"


def to_json_obj(df) -> dict:
    """One table as plain JSON types (integers stay integers, missing values are null)."""
    metrics = df.attrs["metrics"]
    rows = []
    for _, r in df.iterrows():
        entry = {"method": r["method"], "results": r["results"], "n_clips": int(r["n_clips"]),
                 "coverage": float(r["coverage"]) if _present(r["coverage"]) else None,
                 "partial": bool(r["partial"]), "metrics": {}}
        for m in metrics:
            ci = [float(r[f"{m}_ci_low"]), float(r[f"{m}_ci_high"])] if _present(r[f"{m}_ci_low"]) else None
            entry["metrics"][m] = {
                "value": float(r[m]) if _present(r[m]) else None, "ci95": ci, "ci_shown": show_ci(r, m),
                "n_ok": int(r[f"{m}_n_ok"]) if _present(r[f"{m}_n_ok"]) else None, "n": int(r[f"{m}_n"]),
                "status": r[f"{m}_status"], "note": df.attrs["notes"].get((r["method"], m)),
            }
        rows.append(entry)
    return {"schema": SCHEMA, "benchmark": df.attrs["benchmark"], "title": title(df),
            "higher_is_better": df.attrs["higher_is_better"], "legend": df.attrs["ci_legend"],
            "not_scored": df.attrs["not_scored"], "rows": rows}


def plot(df, path: str | os.PathLike) -> Path:
    from interactive_eyes.app.leaderboard_plot import plot as _plot

    return _plot(df, path)
