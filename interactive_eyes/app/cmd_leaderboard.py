"""``ie-bench leaderboard RESULTS...``: parse options, call interactive_eyes.app.leaderboard."""

from __future__ import annotations

import json
from pathlib import Path

import click

from interactive_eyes.app.exit_codes import HELP_EPILOG, UsageError


def _per_benchmark(path: str | None, df, split: bool) -> Path | None:
    """``board.png`` -> ``board_<benchmark>.png`` when tables are split (one file per benchmark)."""
    if not path:
        return None
    p = Path(path)
    return p.with_name(f"{p.stem}_{df.attrs['benchmark']['name']}{p.suffix}") if split else p


@click.command("leaderboard", epilog=HELP_EPILOG)
@click.argument("results", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="Write the machine-clean CSV here.")
@click.option("--md", "md_path", type=click.Path(dir_okay=False), help="Write Markdown (with ↑/↓) here.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False),
              help="Write a PNG: a point per value on per-metric axes, CI whiskers where an interval exists.")
@click.option("--json", "as_json", is_flag=True, help="Print the table(s) as JSON instead of Markdown.")
@click.option("--allow-partial", is_flag=True, help="Include --clips/--limit runs.")
@click.option("--split-benchmarks", is_flag=True,
              help="Runs of different benchmarks: one table each (files get a _<benchmark> suffix) instead of an error.")
def leaderboard(results, csv_path, md_path, plot_path, as_json, allow_partial, split_benchmarks):
    """One row per results.json (file or output folder); prints Markdown (or JSON with --json).

    Missing values are n/a (never 0), every value carries n_ok/n, intervals are shown only over
    enough clips, and runs of different benchmarks never share a table.
    """
    from interactive_eyes.app.leaderboard import (LeaderboardError, build_table, group_by_benchmark, load_results,
                                                  plot, to_csv, to_json_obj, to_markdown)

    try:
        groups = group_by_benchmark(load_results(list(results), allow_partial=allow_partial), split=split_benchmarks)
    except LeaderboardError as exc:
        raise UsageError(str(exc)) from None
    split = len(groups) > 1
    tables, mds = [], []
    for runs in groups:
        df = build_table(runs)
        md = to_markdown(df)
        mds.append(md)
        tables.append(to_json_obj(df))
        if csv_path:
            to_csv(df, _per_benchmark(csv_path, df, split))
        if md_path:
            _per_benchmark(md_path, df, split).write_text(md)
        if plot_path:
            plot(df, _per_benchmark(plot_path, df, split))
    if as_json:
        click.echo(json.dumps({"schema": "ie-bench/leaderboard", "tables": tables}, indent=1))
    else:
        click.echo("\n".join(mds), nl=False)
