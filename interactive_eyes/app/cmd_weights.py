"""``ie-bench weights list|fetch|verify``: the model files ie-bench uses, in its cache.

No heavy imports at module level (``ie-bench --help`` stays fast).
"""

from __future__ import annotations

import json
import sys

import click

_STATE_MARK = {"verified": "verified", "accepted": "present (unconfirmed pin)", "mismatch": "MISMATCH",
               "missing": "missing"}


def _names(names: tuple[str, ...]) -> list[str]:
    from interactive_eyes.weights import WeightsError, default_names, expand_sets, get_spec

    names = tuple(expand_sets(names))  # a set name (e.g. anytalker-1.3b) stands for its members
    try:
        for n in names:
            get_spec(n)  # one-line error with "did you mean" for unknown names
    except WeightsError as exc:
        raise click.ClickException(str(exc)) from None
    return list(names) or default_names()  # set members only when asked for (they are large)


@click.group()
@click.option("--offline", is_flag=True, help="Never download (also: IE_BENCH_OFFLINE=1).")
@click.pass_context
def weights(ctx: click.Context, offline: bool) -> None:
    """Model weights: list what is cached, fetch (verified download), verify checksums.

    Cache: $IE_BENCH_HOME/weights (default ~/.cache/ie-bench/weights). A file placed elsewhere
    can be named per weight with IE_BENCH_WEIGHT_<NAME>=/path (e.g. IE_BENCH_WEIGHT_PT_INCEPTION).
    """
    ctx.obj = {"offline": offline}


@weights.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (entries and their state).")
def list_cmd(as_json: bool) -> None:
    """Every registered weight: state (verified / present / MISMATCH / missing), size and path."""
    from interactive_eyes.weights import describe, status

    rows = status()
    if as_json:
        out = [{**describe(s.name), "state": s.state, "path": str(s.path), "sha256_actual": s.sha256,
                "detail": s.detail, "user_supplied": s.user_supplied} for s in rows]
        click.echo(json.dumps(out, indent=2))
        return
    from interactive_eyes.weights import get_spec

    width = max(len(s.name) for s in rows)
    for s in rows:
        spec = get_spec(s.name)
        size = f"{spec.size / 2**20:7.1f} MiB" if spec.size else "   ?    MiB"
        where = f"{s.path}{' ($' + spec.env_var + ')' if s.user_supplied else ''}"
        click.echo(f"{s.name:<{width}}  {_STATE_MARK[s.state]:<26} {size}  {where}")
        if s.state == "mismatch":
            click.echo(f"{'':<{width}}  {s.detail}")


@weights.command("fetch")
@click.argument("names", nargs=-1)
@click.option("--force", is_flag=True, help="Download again even if a verified copy is cached.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.pass_context
def fetch_cmd(ctx: click.Context, names: tuple[str, ...], force: bool, quiet: bool) -> None:
    """Download NAMES (default: all but the method sets) into the cache, verified, atomically.

    A NAME may be a set: `ie-bench weights fetch anytalker-1.3b` fetches the AnyTalker-1.3B files.
    """
    from interactive_eyes.weights import WeightsError, fetch, is_offline

    if (ctx.obj or {}).get("offline") or is_offline():
        raise click.ClickException("offline mode (--offline / IE_BENCH_OFFLINE=1): nothing can be fetched")
    failed = []
    for name in _names(names):
        try:
            path = fetch(name, progress=not quiet, force=force)
            click.echo(f"{name}: {path}")
        except WeightsError as exc:
            click.echo(f"{name}: {exc}", err=True)
            failed.append(name)
    if failed:
        raise click.ClickException(f"{len(failed)} weight(s) could not be fetched: {', '.join(failed)}")


@weights.command("verify")
@click.argument("names", nargs=-1)
def verify_cmd(names: tuple[str, ...]) -> None:
    """Check NAMES (default: all present) against the registry's size and SHA-256.

    Exit status 1 if a file does not match, or if a weight named explicitly is missing.
    """
    from interactive_eyes.weights import verify

    bad = 0
    for name in _names(names):
        s = verify(name)
        if s.state == "missing" and not names:
            continue
        click.echo(f"{name}: {_STATE_MARK[s.state]}  {s.path}" + (f"  ({s.detail})" if s.detail else ""))
        bad += s.state in ("mismatch", "missing")
    if bad:
        sys.exit(1)
