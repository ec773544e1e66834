"""``ie-bench leaderboard RESULTS...``."""

from __future__ import annotations

import click


@click.command("leaderboard")
@click.argument("results", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="Write the machine-clean CSV here.")
@click.option("--md", "md_path", type=click.Path(dir_okay=False), help="Write Markdown (with ↑/↓) here.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), help="Write a PNG bar chart with CI whiskers.")
@click.option("--allow-partial", is_flag=True, help="Include --clips/--limit runs.")
def leaderboard(results, csv_path, md_path, plot_path, allow_partial):
    """One row per results.json (file or output folder); prints Markdown."""
    from interactive_eyes.app.leaderboard import LeaderboardError, build_table, load_results, plot, to_csv, to_markdown

    try:
        runs = load_results(list(results), allow_partial=allow_partial)
    except LeaderboardError as exc:
        raise click.ClickException(str(exc)) from None
    df = build_table(runs)
    md = to_markdown(df)
    click.echo(md, nl=False)
    if csv_path:
        to_csv(df, csv_path)
    if md_path:
        with open(md_path, "w") as f:
            f.write(md)
    if plot_path:
        plot(df, plot_path)
