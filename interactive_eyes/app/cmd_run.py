"""``ie-bench run`` (generate a benchmark's clips with a method) and ``ie-bench methods``."""

from __future__ import annotations

import json

import click


def _parse_param(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise click.BadParameter(f"{text!r} is not KEY=VALUE", param_hint="--param")
    try:
        return key, json.loads(value)  # numbers, booleans, lists; anything else stays a string
    except json.JSONDecodeError:
        return key, value


@click.command("run")
@click.option("--method", "method_name", required=True, help="Registered method (see `ie-bench methods`).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Output folder for <clip_id>.mp4 and run.json (default: runs/<method>).")
@click.option("--clips", default=None, help="Comma-separated clip ids (default: all clips).")
@click.option("--limit", type=click.IntRange(min=0), default=None, help="Only the first N selected clips (the run is then partial).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed passed to the method.")
@click.option("--root", type=click.Path(file_okay=False), default=None, help="Data root (default: $IE_BENCH_DATA or the cache).")
@click.option("--manifest", default=None, help="Manifest file or shipped name (default: interactive_eyes).")
@click.option("--reference-frames", type=click.Path(file_okay=False), default=None,
              help="Folder of <clip_id>.png|jpg reference frames (default: <root>/frames from `data fetch --frames`).")
@click.option("--param", "param_items", multiple=True, metavar="KEY=VALUE", help="Override a method parameter (repeatable).")
@click.option("--overwrite", is_flag=True, help="Regenerate clips that are already done; replace a run of another configuration.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def run(method_name, out_dir, clips, limit, seed, root, manifest, reference_frames, param_items, overwrite, quiet):
    """Generate the benchmark's clips with METHOD into OUT (resumable: rerun to continue)."""
    from interactive_eyes.app.run import RunError, run_method
    from interactive_eyes.data.manifest import ManifestError
    from interactive_eyes.registry import UnknownNameError

    params = dict(_parse_param(p) for p in param_items)
    clip_ids = [c.strip() for c in clips.split(",") if c.strip()] if clips else None
    out_dir = out_dir or f"runs/{method_name}"
    try:
        doc = run_method(
            method_name,
            benchmark=manifest,
            out_dir=out_dir,
            reference_frames=reference_frames,
            data_root=root,
            clips=clip_ids,
            limit=limit,
            seed=seed,
            overwrite=overwrite,
            progress=not quiet,
            params=params,
        )
    except (UnknownNameError, RunError, ManifestError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    except KeyError as exc:  # unknown clip id, with a did-you-mean hint
        raise click.ClickException(str(exc.args[0] if exc.args else exc)) from None

    inv = doc["last_invocation"]
    entries = doc["clips"]
    for cid in inv["clips"]:
        e = entries.get(cid, {})
        if e.get("status") != "ok":
            click.echo(f"{cid}: {e.get('status')}: {e.get('reason')}", err=True)
    c = doc["counts"]
    click.echo(
        f"{doc['method']}: {len(inv['clips'])} clips this run ({inv['generated']} generated, {inv['reused']} reused); "
        f"folder: {c['ok']} ok, {c['failed']} failed, {c['skipped']} skipped, {c['not_run']} not run "
        f"-> {out_dir}/run.json"
    )
    if any(entries.get(cid, {}).get("status") == "failed" for cid in inv["clips"]):
        raise SystemExit(1)


@click.command("methods")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (name, version, capabilities, parameters).")
def methods(as_json):
    """List the registered generation methods and what they can do."""
    from interactive_eyes.baselines import METHODS

    rows = []
    for name in METHODS.names():
        cls = METHODS.get(name)
        rows.append({"name": name, "version": cls.version, "capabilities": cls.capabilities.to_dict(),
                     "params": dict(cls.DEFAULT_PARAMS), "summary": ((cls.__doc__ or "").strip().splitlines() or [""])[0]})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'method':<10} {'ver':<4} {'people':<7} {'binding':<21} {'fps':>4}  {'duration':<12} {'GPU':<7} reference frame")
    for r in rows:
        cap = r["capabilities"]
        people = "any" if cap["max_people"] is None else str(cap["max_people"])
        lo, hi = cap["min_duration"], cap["max_duration"]
        dur = "any" if lo is None and hi is None else f"{lo or 0:g}-{hi if hi is not None else 'inf'} s"
        gpu = "CPU" if cap["gpu_memory_gb"] is None else f"{cap['gpu_memory_gb']:g} GB"
        click.echo(f"{r['name']:<10} {r['version']:<4} {people:<7} {cap['binding']:<21} {cap['native_fps']:>4g}  "
                   f"{dur:<12} {gpu:<7} {'needed' if cap['needs_reference_frame'] else 'no'}")
