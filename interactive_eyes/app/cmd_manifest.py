"""``ie-bench manifest build``: a manifest from a folder of your own videos (``data/build.py``).

Exit codes (app/exit_codes.py): 0 every video became a clip; 1 the manifest was written but some
videos were left out (each reason printed as one line on stderr); 2 usage or input error (not a
folder of videos, several people without per-person tracks, a bad name, nothing buildable);
3 the data root or output cannot be written.
"""

from __future__ import annotations

import click

from interactive_eyes.app.cmd_common import EPILOG, exits


@click.group(epilog=EPILOG)
def manifest() -> None:
    """Build manifests for your own clips (docs/own_data.md)."""


@manifest.command("build", epilog=EPILOG)
@click.argument("videos_dir", type=click.Path(file_okay=False))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="The manifest .json to write.")
@click.option("--tracks", "tracks_dir", type=click.Path(file_okay=False),
              help="Folder (searched recursively) of per-person tracks <clip>_<role>.wav|flac; roles left/right "
                   "for two people, p0..pN-1 otherwise. Needed for more than one person.")
@click.option("--people", type=click.IntRange(min=1),
              help="People per video (default: 1, or as many as each clip has tracks under --tracks).")
@click.option("--name", help="Benchmark name (default: the folder's name); names the default data root.")
@click.option("--root", type=click.Path(file_okay=False),
              help="Data root receiving the tracks and ground-truth videos "
                   "(default: $IE_BENCH_DATA, else ~/.cache/ie-bench/data/<name>).")
@click.option("--reference-frames", type=click.Path(file_okay=False),
              help="Write every clip's first frame here as <clip>.png (for `ie-bench run --reference-frames`).")
@click.option("--protocol", type=click.Choice(["single", "interactive"]),
              help="Scoring protocol recorded in the manifest (default: single when every clip has one person).")
def build(videos_dir, out, tracks_dir, people, name, root, reference_frames, protocol) -> None:
    """One clip per video in VIDEOS_DIR (id = file stem), speaking segments from Silero VAD."""
    from interactive_eyes.app.exit_codes import PARTIAL
    from interactive_eyes.data.build import build_manifest

    with exits():
        report = build_manifest(videos_dir, out, root=root, tracks_dir=tracks_dir, people=people, name=name,
                                reference_frames=reference_frames, protocol=protocol)
    for line in report.problems:
        click.echo(f"error: {line}", err=True)
    n_people = sorted({len(c["people"]) for c in report.manifest["clips"]})
    click.echo(f"{report.out}: {report.n_clips} clip(s), {'/'.join(map(str, n_people))} person(s) per clip, "
               f"protocol {report.manifest['protocol']}; data root {report.root}")
    if report.problems:
        raise SystemExit(PARTIAL)
