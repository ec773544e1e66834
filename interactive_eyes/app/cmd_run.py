"""``ie-bench run`` (generate a benchmark's clips with a method) and ``ie-bench methods``.

Exit codes (interactive_eyes/app/exit_codes.py): 0 every requested clip ok or declared
unsupported; 1 some clip failed; 2 usage or input error (unknown method, clip or parameter, bad
manifest, ``--composite`` with a multi-person method); 3 environment (method not configured,
model files missing, run folder locked by another process).
"""

from __future__ import annotations

import json

import click

from interactive_eyes.app.exit_codes import HELP_EPILOG, OK, PARTIAL, EnvironmentProblem, UsageError


def _parse_param(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise click.BadParameter(f"{text!r} is not KEY=VALUE", param_hint="--param")
    try:
        return key, json.loads(value)  # numbers, booleans, lists; anything else stays a string
    except json.JSONDecodeError:
        return key, value


@click.command("run", epilog=HELP_EPILOG)
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
@click.option("--param", "param_items", multiple=True, metavar="KEY=VALUE",
              help="Override a method parameter (repeatable), e.g. repo=DIR python=EXE weights=DIR for foreign methods.")
@click.option("--method-config", type=click.Path(dir_okay=False), default=None,
              help="TOML file of foreign methods' repo/python/weights (default: $IE_BENCH_HOME/methods.toml).")
@click.option("--composite", is_flag=True,
              help="Single-person method on multi-person clips: run per person on crops, paste back (labelled '<method>+composite').")
@click.option("--overwrite", is_flag=True, help="Regenerate clips that are already done; replace a run of another configuration.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="Where clips are generated: this process, or Ray actors (every node must see --out; docs/scale_out.md).")
@click.option("--ray-address", help="Ray cluster to join: auto or HOST:PORT (default: start a local Ray for the run).")
@click.option("--devices", help="One worker per device, each pinned through CUDA_VISIBLE_DEVICES, e.g. cuda:0,cuda:1.")
def run(method_name, out_dir, clips, limit, seed, root, manifest, reference_frames, param_items, method_config,
        composite, overwrite, quiet, executor, ray_address, devices):
    """Generate the benchmark's clips with METHOD into OUT (resumable: rerun to continue)."""
    from interactive_eyes.app.run import FolderLocked, MethodNotConfigured, RunError, run_method
    from interactive_eyes.data.manifest import ManifestError
    from interactive_eyes.registry import UnknownNameError
    from interactive_eyes.weights import WeightsError

    from interactive_eyes.app.errors import EnvironmentFailure
    from interactive_eyes.app.executors import make_executor, parse_devices

    try:
        device_list = parse_devices(devices)
        runner = (make_executor(executor, devices=device_list, ray_address=ray_address)
                  if executor == "ray" or device_list else None)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except EnvironmentFailure as exc:  # a device that is not here
        raise EnvironmentProblem(str(exc)) from None
    params = dict(_parse_param(p) for p in param_items)
    clip_ids = [c.strip() for c in clips.split(",") if c.strip()] if clips else None
    out_dir = out_dir or f"runs/{method_name}{'+composite' if composite else ''}"
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
            method_config=method_config,
            composite=composite,
            executor=runner,
        )
    except (MethodNotConfigured, FolderLocked, EnvironmentFailure, WeightsError) as exc:
        # WeightsError: a model file that is not the registry's (a method's prepare(), before any clip)
        raise EnvironmentProblem(str(exc)) from None
    except ImportError as exc:  # --executor ray without Ray installed
        raise EnvironmentProblem(str(exc)) from None
    except FileNotFoundError as exc:  # a method's prepare(): its model files are missing (environment)
        raise EnvironmentProblem(" ".join(str(exc).split())) from None
    except (UnknownNameError, RunError, ManifestError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    except KeyError as exc:  # unknown clip id, with a did-you-mean hint
        raise UsageError(str(exc.args[0] if exc.args else exc)) from None

    inv = doc["last_invocation"]
    entries = doc["clips"]
    for cid in inv["clips"]:
        e = entries.get(cid, {})
        if e.get("status") != "ok":
            label = "unsupported" if e.get("decision") == "unsupported" else e.get("status")
            click.echo(f"{cid}: {label}: {e.get('reason')}", err=True)
    c = doc["counts"]
    click.echo(
        f"{doc['method']}: {len(inv['clips'])} clips this run ({inv['generated']} generated, {inv['reused']} reused); "
        f"folder: {c['ok']} ok, {c['failed']} failed, {c['skipped']} skipped, {c['not_run']} not run "
        f"-> {out_dir}/run.json"
    )
    failed = any(entries.get(cid, {}).get("status") == "failed" for cid in inv["clips"])
    raise SystemExit(PARTIAL if failed else OK)


def method_rows(method_config=None) -> list[dict]:
    """One row per registered method: capabilities, licenses, parameters, configured or what is missing."""
    from interactive_eyes.baselines import METHODS

    config_path, config, error = None, {}, None
    rows = []
    for name in METHODS.names():
        cls = METHODS.get(name)
        row = {"name": name, "version": cls.version, "capabilities": cls.capabilities.to_dict(),
               "params": dict(cls.DEFAULT_PARAMS), "summary": ((cls.__doc__ or "").strip().splitlines() or [""])[0],
               "code_license": cls.capabilities.code_license, "weight_licenses": list(cls.capabilities.weight_licenses),
               "configured": True, "missing": [], "foreign": hasattr(cls, "missing")}
        if row["foreign"]:
            from interactive_eyes.baselines.method_config import ConfigError, load, table_for

            try:
                if config_path is None:
                    config, config_path = load(method_config)
                inst = cls(**table_for(cls, config, config_path))
                row["missing"] = inst.missing()
            except (ConfigError, ValueError) as exc:
                error = error or str(exc)
                row["missing"] = [" ".join(str(exc).split())]
            row["configured"] = not row["missing"]
            row["config_file"] = str(config_path) if config_path else None
        rows.append(row)
    return rows


@click.command("methods", epilog=HELP_EPILOG)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (capabilities, licenses, parameters, configuration).")
@click.option("--method-config", type=click.Path(dir_okay=False), default=None,
              help="TOML file of foreign methods' repo/python/weights (default: $IE_BENCH_HOME/methods.toml).")
def methods(as_json, method_config):
    """List the registered generation methods, what they can do, and whether each is configured here."""
    rows = method_rows(method_config)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'method':<19} {'people':<6} {'binding':<21} {'fps':>3}  {'duration':<11} {'GPU':<6} "
               f"{'code license':<22} status")
    for r in rows:
        cap = r["capabilities"]
        people = "any" if cap["max_people"] is None else str(cap["max_people"]) + ("+s" if cap["silent_extra_people_ok"] else "")
        lo, hi = cap["min_duration"], cap["max_duration"]
        dur = "any" if lo is None and hi is None else f"{lo or 0:g}-{format(hi, '.4g') if hi is not None else 'inf'} s"
        gpu = "CPU" if cap["gpu_memory_gb"] is None else f"{cap['gpu_memory_gb']:g} GB"
        if cap["binding"] == "mask_api":
            gpu = "API"
        if not r["foreign"]:
            status = "built in"
        elif r["configured"]:
            status = "configured"
        else:
            status = "not configured: " + "; ".join(r["missing"])
        lic = r["code_license"] or "-"
        click.echo(f"{r['name']:<19} {people:<6} {cap['binding']:<21} {cap['native_fps']:>3g}  {dur:<11} {gpu:<6} "
                   f"{lic:<22} {status}")
        if r["weight_licenses"]:
            click.echo(f"{'':<19} weights: {'; '.join(r['weight_licenses'])}")
    path = next((r.get("config_file") for r in rows if r.get("config_file")), None)
    if path:
        click.echo(f"config: {path} (one [method] table each: repo, python, weights; or --param KEY=VALUE)")
