"""``ie-bench demo``: build a tiny offline benchmark, generate with static and puppet, score, rank."""

from __future__ import annotations

import click


@click.command("demo")
@click.option("--out", type=click.Path(file_okay=False), default="ie-bench-demo", show_default=True,
              help="Folder for the demo benchmark, generated videos, results and leaderboard.")
@click.option("--metrics", help="Comma-separated metrics (default: every metric that can run offline).")
def demo(out, metrics):
    """Run the whole job offline in about a minute: data, generation, scoring, leaderboard."""
    from interactive_eyes.app.demo import run_demo

    run_demo(out, metrics=[m.strip() for m in metrics.split(",")] if metrics else None, echo=click.echo)
