"""``ie-bench demo``: build a tiny offline benchmark, generate with static and puppet, score, rank.

Exit codes: 0 every method scored every clip on every metric that ran; 1 a clip failed or a metric
named with ``--metrics`` was skipped; 2 bad option; 3 environment (disk full, folder locked).
"""

from __future__ import annotations

import click

from interactive_eyes.app.cmd_common import EPILOG, exits


@click.command("demo", epilog=EPILOG)
@click.option("--out", type=click.Path(file_okay=False), default="ie-bench-demo", show_default=True,
              help="Folder for the demo benchmark, generated videos, results and leaderboard.")
@click.option("--metrics", help="Comma-separated metrics (default: every metric that can run offline).")
@click.option("--offline/--online", default=True, show_default=True,
              help="The demo never downloads weights by default; --online lets model metrics fetch theirs.")
def demo(out, metrics, offline):
    """Run the whole job offline in about a minute: data, generation, scoring, leaderboard."""
    from interactive_eyes.app.demo import run_demo

    with exits():
        summary = run_demo(out, metrics=[m.strip() for m in metrics.split(",")] if metrics else None, echo=click.echo,
                           offline=offline)
    raise SystemExit(summary["exit_code"])
