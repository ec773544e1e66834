"""The leaderboard's PNG: one panel per metric, one row per run, a point per value.

Points rather than bars: a bar's length reads as the value, so a bar chart needs a zero baseline,
and on a 0-1 axis 1.0 vs 0.989 look the same. Points on an axis fitted to each metric's values
show the spread without implying a zero. Missing values are the text "n/a" in the row, never a
mark; whiskers are drawn only where ``leaderboard.show_ci`` allows; every point is labelled
with its value and ``n_ok/n``.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import numpy as np

from interactive_eyes.app.leaderboard import MIN_CI_CLIPS, _present, n_text, show_ci, title

#: Empty margin around the plotted values, as a fraction of their span on each side.
PAD = 0.25


def axis_limits(points: list[float]) -> tuple[float, float] | None:
    """x-limits that contain every value and drawn whisker end with a margin; None if nothing is drawn.

    Equal values get a margin of 0.5 % of their magnitude (at least 1e-3) so the point is not
    on the frame; otherwise PAD x span each side.
    """
    pts = [p for p in points if np.isfinite(p)]
    if not pts:
        return None
    lo, hi = min(pts), max(pts)
    span = hi - lo
    pad = PAD * span if span > 0 else max(abs(lo) * 0.005, 1e-3)
    return lo - pad, hi + pad


def plot(df, path: str | os.PathLike) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import ScalarFormatter

    metrics = df.attrs["metrics"]
    hib = df.attrs["higher_is_better"]
    n_rows = len(df)
    n_panels = max(1, len(metrics))
    fig, axes = plt.subplots(1, n_panels, figsize=(3.4 * n_panels + 1.2, 1.3 + 0.55 * n_rows + 0.9),
                             squeeze=False, sharey=True)
    y = np.arange(n_rows)[::-1]  # first run on top
    any_ci = False
    for ax, m in zip(axes[0], metrics):
        pts = []
        for yi, (_, r) in zip(y, df.iterrows()):
            if _present(r[m]):
                pts.append(float(r[m]))
                if show_ci(r, m):
                    pts += [float(r[f"{m}_ci_low"]), float(r[f"{m}_ci_high"])]
        lim = axis_limits(pts)
        if lim is None:
            lim = (0.0, 1.0)
            ax.set_xticks([])
        ax.set_xlim(*lim)
        mid = 0.5 * (lim[0] + lim[1])
        for yi, (_, r) in zip(y, df.iterrows()):
            n = n_text(r, m)
            if not _present(r[m]):
                ax.text(mid, yi, f"n/a ({n})", ha="center", va="center", color="0.45", style="italic", fontsize=9)
                continue
            v = float(r[m])
            if show_ci(r, m):
                any_ci = True
                lo, hi = float(r[f"{m}_ci_low"]), float(r[f"{m}_ci_high"])
                ax.errorbar([v], [yi], xerr=[[v - lo], [hi - v]], fmt="none", ecolor="#4C72B0", capsize=4, lw=1.2)
            ax.plot([v], [yi], "o", color="#4C72B0", ms=7)
            ax.annotate(f"{v:.4g} ({n})", (v, yi), xytext=(0, 8), textcoords="offset points",
                        ha="center", va="bottom", fontsize=8)
        fmt = ScalarFormatter(useOffset=False)
        ax.xaxis.set_major_formatter(fmt)
        ax.tick_params(axis="x", labelsize=8)
        ax.set_ylim(-0.7, n_rows - 0.3)
        ax.grid(axis="x", color="0.9")
        ax.set_title(f"{m} {'↑ higher is better' if hib[m] else '↓ lower is better'}", fontsize=9)
    axes[0][0].set_yticks(y, list(df["method"]), fontsize=9)
    n_clips = sorted({int(c) for c in df["n_clips"]})
    clips = f"{n_clips[0]} clips" if len(n_clips) == 1 else f"runs of {n_clips[0]}-{n_clips[-1]} clips"
    fig.suptitle(f"{title(df)} ({clips})", fontsize=11)
    legend = ("whiskers: " + df.attrs["ci_legend"]) if any_ci else \
        (f"no whiskers: no value has an interval over >= {MIN_CI_CLIPS} scored clips; "
         "n_ok/n = clips scored / clips expected")
    legend += ". n/a: skipped or no clip ok (never drawn as 0)."
    if df.attrs.get("not_scored"):
        legend += f" Not scored in any run: {', '.join(df.attrs['not_scored'])}."
    width_chars = int(fig.get_figwidth() * 17)  # ~17 characters per inch at 7 pt
    fig.text(0.01, 0.01, textwrap.fill(legend, width_chars), fontsize=7, color="0.3", va="bottom")
    fig.tight_layout(rect=(0, 0.04 + 0.035 * (len(legend) // width_chars + 1), 1, 0.94))
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
