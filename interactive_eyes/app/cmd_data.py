"""``ie-bench data fetch`` and ``ie-bench data verify``: thin click wrappers over
``interactive_eyes.data.fetch`` and ``interactive_eyes.data.verify``.

Exit codes (app/exit_codes.py): 0 when everything asked for is present and verified; 1 when a
file is missing, corrupt or fails its checksum, a download fails, or the annotations disagree
with the VAD (each reason printed as one line on stderr); 2 for usage and input errors (bad
option, manifest, clip id, data root not found); 3 when the environment stops the command (an
optional extra such as yt-dlp not installed, offline mode, disk full).
"""

from __future__ import annotations

import click

from interactive_eyes.app.cmd_common import EPILOG, exits
from interactive_eyes.app.exit_codes import UsageError

_root_option = click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    help="Data root. Default: $IE_BENCH_DATA, else $XDG_CACHE_HOME/ie-bench/data/<benchmark> (~/.cache/...).",
)
_manifest_option = click.option(
    "--manifest",
    default=None,
    metavar="NAME|PATH",
    help="A shipped manifest name or a manifest file (default: interactive_eyes).",
)
_clips_option = click.option(
    "--clips",
    default=None,
    metavar="ID[,ID...]",
    help="Only these clips (comma-separated ids).",
)


def _load(manifest: str | None, clips: str | None, root: str | None):
    from interactive_eyes.data import manifest as manifest_mod
    from interactive_eyes.data.paths import data_root

    try:
        bench = manifest_mod.load(manifest)
    except (manifest_mod.ManifestError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from None
    selected = None
    if clips:
        selected = [c.strip() for c in clips.split(",") if c.strip()]
        for c in selected:
            try:
                bench.clip(c)
            except KeyError as exc:
                raise click.BadParameter(exc.args[0], param_hint="--clips") from None
    return bench, selected, data_root(root, bench.name)


def _fail_lines(lines: list[str]) -> None:
    for line in lines:
        click.echo(f"error: {line}", err=True)


@click.group("data", epilog=EPILOG)
def data() -> None:
    """Fetch and verify benchmark data (audio tracks, annotations, frames, videos)."""


@data.command("fetch", epilog=EPILOG)
@_root_option
@_manifest_option
@_clips_option
@click.option("--frames", is_flag=True, help="Also extract each clip's reference frame from YouTube (needs ie-bench[youtube]).")
@click.option("--videos", is_flag=True,
              help="Also cut each clip's ground-truth video from YouTube, aligned to the released audio (needs ie-bench[youtube]).")
@click.option("--overwrite", is_flag=True, help="Re-extract frames/videos that already exist (released files are never replaced).")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bars on stderr.")
def fetch(root, manifest, clips, frames, videos, overwrite, progress) -> None:
    """Download the released files (checked by sha256, written atomically; verified files are skipped)."""
    from interactive_eyes.data.fetch import FetchError, MissingExtraError, fetch_release, fetch_youtube

    bench, selected, root_path = _load(manifest, clips, root)
    click.echo(f"data root: {root_path}")
    try:
        with exits():
            report = fetch_release(root_path, bench, clips=selected, progress=progress)
    except FetchError as exc:  # the manifest names no release to fetch from
        raise UsageError(str(exc)) from None
    items = list(report.items)
    if frames or videos:
        try:
            with exits():
                items += fetch_youtube(root_path, bench, clips=selected, frames=frames, videos=videos,
                                       overwrite=overwrite)
        except FetchError as exc:  # the optional extra is missing (MissingExtraError): environment
            _fail_lines([str(exc)])
            report.items = items
            click.echo(report.summary())
            raise SystemExit(3 if isinstance(exc, MissingExtraError) else 1)
    report.items = items
    for it in items:
        if it.status == "skipped":
            click.echo(f"skipped {it.what}: {it.reason}")
        elif it.status == "downloaded" and it.reason:
            click.echo(f"{it.what}: {it.reason}")
    _fail_lines([it.reason for it in report.failures])
    click.echo(report.summary())
    if not report.ok:
        raise SystemExit(1)


@data.command("verify", epilog=EPILOG)
@_root_option
@_manifest_option
@_clips_option
@click.option("--no-vad", is_flag=True, help="Skip the check of the speaking segments against Silero VAD.")
def verify(root, manifest, clips, no_vad) -> None:
    """Check every file (presence, PCM hash, duration) and the speaking segments against Silero VAD."""
    from interactive_eyes.data import verify as verify_mod

    bench, selected, root_path = _load(manifest, clips, root)
    if not root_path.is_dir():
        raise UsageError(f"{root_path}: data root not found (run `ie-bench data fetch` or pass --root)")
    files = verify_mod.verify_files(bench, root_path, selected)
    vad = None
    if not no_vad:
        broken = {c.clip for c in files.of_kind("audio") if not c.ok}
        good = [c.id for c in verify_mod.select_clips(bench, selected) if c.id not in broken]
        if good:
            vad = verify_mod.check_segments_vad(bench, root_path, good)
    click.echo(f"data root: {root_path}")
    click.echo(verify_mod.format_report(files, vad, bench))
    problems = [c.line() for c in files.failures]
    if vad is not None and not vad.ok:
        s = vad.summary
        problems.append(f"speaking segments: median distance to the nearest Silero VAD boundary {s.median:.3f} s "
                        f"> {vad.tolerance} s over {s.n} boundaries")
    _fail_lines(problems)
    if problems:
        raise SystemExit(1)
