"""``ie-bench weights list|fetch|verify``: the model files ie-bench uses, in its cache.

Exit codes (``interactive_eyes.app.exit_codes``): 0 = everything asked for is in place and
checks out; 1 = ``verify`` found a file that is missing, does not match or is corrupt; 2 = an
unknown weight name; 3 = the environment stopped ``fetch`` (network failure, or a file missing
while offline). ``--offline`` is accepted by the group and by every subcommand, and means the
same everywhere: never download (``fetch --offline`` checks what is in place instead).

No heavy imports at module level (``ie-bench --help`` stays fast).
"""

from __future__ import annotations

import json
import sys

import click

from interactive_eyes.app.exit_codes import HELP_EPILOG, PARTIAL, EnvironmentProblem, UsageError

_STATE_MARK = {"verified": "verified", "accepted": "present (unconfirmed pin)", "mismatch": "MISMATCH",
               "missing": "missing", "corrupt": "CORRUPT"}

_OFFLINE_HELP = "Never download (also: IE_BENCH_OFFLINE=1)."


def _offline(ctx: click.Context, offline: bool) -> bool:
    from interactive_eyes.weights import is_offline

    return bool(offline or (ctx.obj or {}).get("offline") or is_offline())


def _names(names: tuple[str, ...]) -> list[str]:
    from interactive_eyes.weights import WeightsError, default_names, expand_sets, get_spec

    names = tuple(expand_sets(names))  # a set name (e.g. anytalker-1.3b) stands for its members
    try:
        for n in names:
            get_spec(n)  # one-line error with "did you mean" for unknown names
    except WeightsError as exc:
        raise UsageError(str(exc)) from None
    return list(names) or default_names()  # set members only when asked for (they are large)


@click.group(epilog=HELP_EPILOG)
@click.option("--offline", is_flag=True, help=_OFFLINE_HELP)
@click.pass_context
def weights(ctx: click.Context, offline: bool) -> None:
    """Model weights: list what is cached, fetch (verified download), verify checksums.

    Cache: $IE_BENCH_HOME/weights (default ~/.cache/ie-bench/weights). A file placed elsewhere
    can be named per weight with IE_BENCH_WEIGHT_<NAME>=/path (e.g. IE_BENCH_WEIGHT_PT_INCEPTION).
    """
    ctx.obj = {"offline": offline}


@weights.command("list", epilog=HELP_EPILOG)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (entries and their state).")
@click.option("--offline", is_flag=True, help=_OFFLINE_HELP + " list never downloads: accepted for symmetry.")
def list_cmd(as_json: bool, offline: bool) -> None:
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
        if s.state in ("mismatch", "corrupt"):
            click.echo(f"{'':<{width}}  {s.detail}")


@weights.command("fetch", epilog=HELP_EPILOG)
@click.argument("names", nargs=-1)
@click.option("--force", is_flag=True, help="Download again even if a verified copy is cached.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--offline", is_flag=True, help=_OFFLINE_HELP + " Only checks that NAMES are in place.")
@click.pass_context
def fetch_cmd(ctx: click.Context, names: tuple[str, ...], force: bool, quiet: bool, offline: bool) -> None:
    """Download NAMES (default: all but the method sets) into the cache, verified, atomically.

    A NAME may be a set: `ie-bench weights fetch anytalker-1.3b` fetches the AnyTalker-1.3B files.
    Offline, nothing is downloaded: each name is resolved from what is in place, and one that is
    missing is an environment error (exit 3) naming the path to put it at.
    """
    from interactive_eyes.weights import WeightsError, fetch, resolve

    selected = _names(names)
    offline = _offline(ctx, offline)
    if offline and force:
        raise UsageError("--force downloads again; it cannot be combined with --offline")
    failed = []
    for name in selected:
        try:
            path = resolve(name, offline=True) if offline else fetch(name, progress=not quiet, force=force)
            click.echo(f"{name}: {path}")
        except WeightsError as exc:
            click.echo(f"{name}: {exc}", err=True)
            failed.append(name)
    if failed:
        what = "missing or unusable (offline)" if offline else "could not be fetched"
        raise EnvironmentProblem(f"{len(failed)} weight(s) {what}: {', '.join(failed)}")


@weights.command("verify", epilog=HELP_EPILOG)
@click.argument("names", nargs=-1)
@click.option("--rehash", is_flag=True, help="Hash every file again instead of trusting the hash cache "
              "(<cache>/weights/.hashes.json, keyed by inode, size, mtime and ctime).")
@click.option("--offline", is_flag=True, help=_OFFLINE_HELP + " verify never downloads: accepted for symmetry.")
def verify_cmd(names: tuple[str, ...], rehash: bool, offline: bool) -> None:
    """Check NAMES (default: all present) against the registry's size and SHA-256, and files
    without a firm hash against their format (a truncated .onnx is CORRUPT).

    Exit status 1 if a file does not match or is corrupt, or if a weight named explicitly is missing.
    """
    from interactive_eyes.weights import verify

    bad = 0
    for name in _names(names):
        s = verify(name, rehash=rehash)
        if s.state == "missing" and not names:
            continue
        click.echo(f"{name}: {_STATE_MARK[s.state]}  {s.path}" + (f"  ({s.detail})" if s.detail else ""))
        bad += s.state in ("mismatch", "missing", "corrupt")
    if bad:
        sys.exit(PARTIAL)

