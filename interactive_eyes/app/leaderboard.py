"""Leaderboard: one row per results.json, as CSV, Markdown (with ↑/↓) and a PNG bar chart.

A metric missing from a run is an empty cell, never 0. Partial runs (``--clips``/``--limit``)
are refused unless explicitly allowed, because their means are over a different clip set.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


class LeaderboardError(ValueError):
    pass


def load_results(paths: list[str | os.PathLike], *, allow_partial: bool = False) -> list[dict]:
    runs = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            p = p / "results.json" if (p / "results.json").exists() else p / "ie-bench" / "results.json"
        try:
            data = json.loads(p.read_text())
        except FileNotFoundError:
            raise LeaderboardError(f"{p}: no such results file") from None
        except json.JSONDecodeError as exc:
            raise LeaderboardError(f"{p}: not valid JSON ({exc.msg})") from None
        if data.get("schema") != "ie-bench/results":
            raise LeaderboardError(f"{p}: not an ie-bench results file")
        if data.get("partial") and not allow_partial:
            raise LeaderboardError(f"{p}: partial run (--clips/--limit); pass --allow-partial to include it")
        data["_path"] = str(p)
        runs.append(data)
    if not runs:
        raise LeaderboardError("no results given")
    return runs


def _method_name(run: dict) -> str:
    if run.get("method"):
        return str(run["method"])
    return Path(run.get("generated_dir") or run["_path"]).name


def build_table(runs: list[dict]):
    """A pandas DataFrame: method, n_clips, coverage, and per metric value / ci_low / ci_high / n_ok."""
    import pandas as pd

    metric_names: list[str] = []
    directions: dict[str, bool] = {}
    for r in runs:
        for name, m in r["metrics"].items():
            if name not in metric_names:
                metric_names.append(name)
            directions[name] = m["higher_is_better"]
    rows = []
    for r in runs:
        n = r["n_clips"]
        found = r.get("n_videos_found", n)
        row = {"method": _method_name(r), "benchmark": r["benchmark"]["name"], "n_clips": n,
               "coverage": round(found / n, 4) if n else None, "partial": bool(r.get("partial"))}
        for name in metric_names:
            m = r["metrics"].get(name)
            ci = (m or {}).get("ci95") or [None, None]
            row[name] = None if m is None else m.get("value")
            row[f"{name}_ci_low"], row[f"{name}_ci_high"] = ci
            row[f"{name}_n_ok"] = None if m is None else m.get("n_ok")
        rows.append(row)
    df = pd.DataFrame(rows)
    df.attrs["metrics"] = metric_names
    df.attrs["higher_is_better"] = directions
    return df


def to_csv(df, path: str | os.PathLike | None = None) -> str:
    text = df.to_csv(index=False, na_rep="")
    if path:
        Path(path).write_text(text)
    return text


def to_markdown(df) -> str:
    metrics = df.attrs["metrics"]
    hib = df.attrs["higher_is_better"]
    head = ["method", "clips", "coverage"] + [f"{m} {'↑' if hib[m] else '↓'}" for m in metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in df.iterrows():
        cells = [str(r["method"]), str(r["n_clips"]), f"{r['coverage']:.0%}"]
        for m in metrics:
            v = r[m]
            if v is None or v != v:
                cells.append("")
                continue
            lo, hi = r[f"{m}_ci_low"], r[f"{m}_ci_high"]
            ci = f" [{lo:.3g}, {hi:.3g}]" if lo is not None and lo == lo else ""
            cells.append(f"{v:.4g}{ci}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(df, path: str | os.PathLike) -> Path:
    """One bar chart per metric, methods side by side, 95% CI whiskers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    metrics = df.attrs["metrics"]
    hib = df.attrs["higher_is_better"]
    fig, axes = plt.subplots(1, max(1, len(metrics)), figsize=(3.2 * max(1, len(metrics)), 3.4), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        vals = np.array([np.nan if v is None else v for v in df[m]], dtype=float)
        lo = np.array([np.nan if v is None else v for v in df[f"{m}_ci_low"]], dtype=float)
        hi = np.array([np.nan if v is None else v for v in df[f"{m}_ci_high"]], dtype=float)
        err = np.vstack([np.nan_to_num(vals - lo), np.nan_to_num(hi - vals)])
        x = np.arange(len(df))
        ax.bar(x, np.nan_to_num(vals), yerr=err, capsize=4, color="#4C72B0")
        ax.set_xticks(x, df["method"], rotation=30, ha="right")
        ax.set_title(f"{m} {'↑' if hib[m] else '↓'}")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
