"""``ie-bench score`` and ``ie-bench validate``: thin wrappers over the engine and the validator.

Exit codes (app/exit_codes.py): 0 every requested (clip, metric) ok / every clip valid; 1 the run
completed but a clip failed or is missing, a metric named with ``--metrics`` was skipped, nothing
was scored, or validate found an error; 2 usage or input error (bad option, manifest, name);
3 environment (output folder locked, disk full, ``--device cuda`` without CUDA).
"""

from __future__ import annotations

import click

from interactive_eyes.app.cmd_common import EPILOG, exits, offline_mode, offline_option


def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _load_benchmark(manifest):
    from interactive_eyes.data.manifest import ManifestError, load

    from interactive_eyes.app.exit_codes import UsageError

    try:
        return load(manifest)
    except (ManifestError, FileNotFoundError, KeyError) as exc:
        raise UsageError(str(exc.args[0] if isinstance(exc, KeyError) else exc)) from None


@click.command("score", epilog=EPILOG)
@click.argument("generated_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--metrics", help="Comma-separated metric names (default: every metric that can run here).")
@click.option("--root", type=click.Path(file_okay=False), help="Benchmark data root (per-person audio).")
@click.option("--manifest", help="Manifest file or shipped manifest name (default: interactive_eyes).")
@click.option("--out", type=click.Path(file_okay=False), help="Output folder (default: GENERATED_DIR/ie-bench).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1, ...")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Worker processes (clips in parallel); with --executor ray, at most N actors.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="Where clips are computed: this machine, or the actors of a Ray cluster (pip install "
                   "'ie-bench[ray]'; docs/scale_out.md). Results do not depend on it.")
@click.option("--ray-address", help="Ray cluster to join: auto or HOST:PORT (default: start a local Ray for the run).")
@click.option("--ship-videos", is_flag=True,
              help="Ray: send each video to its worker through the object store (default: workers read the "
                   "path, which they must see on a shared file system).")
@click.option("--devices", help="One worker per device, each pinned through CUDA_VISIBLE_DEVICES, e.g. "
                                "cuda:0,cuda:1 (replaces --device and --workers).")
@click.option("--clips-in-flight", default=1, show_default=True, type=click.IntRange(min=1),
              help="Clips each worker scores at once, in threads whose model calls are merged into larger "
                   "batches (one GPU kept busy; docs/scale_out.md). Values agree with 1 within float noise.")
@click.option("--clips", help="Comma-separated clip ids (marks the run partial).")
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N clips (marks the run partial).")
@click.option("--interactivity-mode", type=click.Choice(["corrected", "paper"]), default=None,
              help="Interactivity mode (default: the metric's own default, corrected).")
@click.option("--sync-star-mode", type=click.Choice(["mask", "segment", "framewise"]), default=None,
              help="How Sync-C* restricts each person to their speaking time (default: mask; docs/sync.md).")
@click.option("--landmarks", "landmark_backend", default="mediapipe-tasks", show_default=True,
              help="Landmark backend for face-based metrics: mediapipe-tasks (current MediaPipe model), mediapipe "
                   "(legacy 0.10.21 graph, the 'legacy' extra), face-alignment or insightface.")
@click.option("--reference", "references", multiple=True, type=click.Path(exists=True),
              help="Reference set for FID/FVD/KID/KVD: a folder of real videos/images (both), or a statistics .npz from "
                   "`ie-bench stats` (the metric it was made for). Repeatable.")
@click.option("--option", "extra", multiple=True, metavar="METRIC.KEY=VALUE",
              help="Any metric constructor option, e.g. --option fid.frame_stride=5 (repeatable).")
@click.option("--allow-silent", is_flag=True, help="Score videos without an audio stream (video-only metrics).")
@click.option("--overwrite", is_flag=True, help="Recompute everything instead of resuming.")
@click.option("--strict", is_flag=True, help="Stop at the first problem (a requested metric that cannot run, a "
                                             "missing or failed clip) with exit 1 instead of scoring the others.")
@click.option("--protocol", type=click.Choice(["single", "interactive"]), default=None,
              help="single: the paper's single-person protocol (Sync-C/D on the video's audio, identity, FID/FVD vs "
                   "the manifest's ground-truth videos); default: the manifest's, else interactive (docs/own_data.md).")
@offline_option
@click.option("--json", "as_json", is_flag=True, help="Print results.json instead of the table.")
def score(generated_dir, metrics, root, manifest, out, device, workers, executor, ray_address, ship_videos, devices,
          clips_in_flight, clips, limit, interactivity_mode,
          sync_star_mode, landmark_backend, references, extra, allow_silent, overwrite, strict, protocol, offline,
          as_json):
    """Score a folder of <clip_id>.mp4 videos; resumes unless --overwrite.

    A clip whose file is missing, unreadable, corrupt, of the wrong length (more than one frame
    off the clip's duration) or frame rate (outside 10-60 fps) fails with its reason; the others
    still score. The same checks as `ie-bench validate`.
    """
    import json

    from interactive_eyes.app.engine import EngineOptions
    from interactive_eyes.app.protocol import score as run_score
    from interactive_eyes.app.results import format_table

    metric_options: dict[str, dict] = {}
    if interactivity_mode:
        metric_options.setdefault("interactivity", {})["mode"] = interactivity_mode
    if sync_star_mode:
        metric_options.setdefault("sync", {})["sync_star_mode"] = sync_star_mode
    ref_by_metric: dict[str, str] = {}
    for ref in references:
        for name in ("fid", "fvd", "kid", "kvd"):  # kid/kvd read the features of fid/fvd statistics files
            if ref.endswith(".npz"):
                import numpy as np

                try:
                    with np.load(ref) as z:
                        meta_metric = str(z["meta_metric"]) if "meta_metric" in z.files else None
                except Exception as exc:
                    raise click.BadParameter(f"{ref}: not a readable statistics file ({exc})",
                                             param_hint="--reference") from None
                if meta_metric not in (None, {"kid": "fid", "kvd": "fvd"}.get(name, name)):
                    continue
            ref_by_metric.setdefault(name, ref)
    for item in extra:
        key, sep, value = item.partition("=")
        metric, dot, opt = key.partition(".")
        if not sep or not dot:
            raise click.BadParameter(f"{item!r} is not METRIC.KEY=VALUE", param_hint="--option")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        metric_options.setdefault(metric, {})[opt] = parsed
    from interactive_eyes.app.executors import make_executor, parse_devices

    with exits():  # a bad combination is a usage error (2), a device that is not here exit 3
        device_list = parse_devices(devices)
        if device_list:  # the workers' devices decide; the run records their kind
            device = "cuda" if any(d.startswith("cuda") for d in device_list) else "cpu"
        runner = make_executor(executor, workers=workers, devices=device_list, ray_address=ray_address,
                               ship_videos=ship_videos, clips_in_flight=clips_in_flight)
    options = EngineOptions(device=device, landmark_backend=landmark_backend, metric_options=metric_options,
                            allow_silent=allow_silent, references=ref_by_metric)
    bench = _load_benchmark(manifest)
    with exits(), offline_mode(offline):
        results = run_score(
            generated_dir,
            benchmark=bench,
            data_root=root,
            out=out,
            metrics=_csv(metrics),
            options=options,
            workers=workers,
            executor=runner,
            clips=_csv(clips),
            limit=limit,
            overwrite=overwrite,
            strict=strict,
            protocol=protocol,
        )
    if as_json:
        click.echo(json.dumps(results, indent=2))
    else:
        click.echo(format_table(results))
        from pathlib import Path

        click.echo(f"results: {Path(out or Path(generated_dir) / 'ie-bench') / 'results.json'}")
    raise SystemExit(results["exit_code"])


@click.command("validate", epilog=EPILOG)
@click.argument("generated_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--manifest", help="Manifest file or shipped manifest name (default: interactive_eyes).")
@click.option("--clips", help="Comma-separated clip ids.")
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N clips.")
@click.option("--decode/--no-decode", default=True, show_default=True,
              help="Decode every frame (catches corruption in the middle of a stream); --no-decode only demuxes.")
@click.option("--no-faces", is_flag=True, help="Skip the face count on the first frame.")
@click.option("--strict", is_flag=True, help="Stop at the first error (exit 1).")
def validate(generated_dir, manifest, clips, limit, decode, no_faces, strict):
    """Check names, readability, decoding, fps, duration, audio and faces; exit 1 on any error.

    The per-clip checks are exactly those `ie-bench score` applies before scoring a clip.
    """
    from interactive_eyes.app.validate import format_checks, validate_dir

    bench = _load_benchmark(manifest)
    with exits():
        rows = validate_dir(generated_dir, bench, clips=_csv(clips), check_faces=not no_faces, decode=decode,
                            limit=limit, strict=strict)
    click.echo(format_checks(rows))
    if not rows or any(r.level == "error" for r in rows):
        raise SystemExit(1)
