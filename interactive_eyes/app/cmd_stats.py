"""``ie-bench stats REF -o ref.npz``: reference statistics for FID / FVD, computed once, reused.

The file records the metric, extractor, feature size, weights SHA-256 and frame/clip policy, and
``ie-bench score --reference ref.npz`` refuses a file computed with another network or protocol.
It also holds ``mu``/``sigma``, so ``python -m pytorch_fid`` can read it (FID files), and by default
every sample's float32 feature row (``features``, recorded as ``meta_features``), which KID / KVD need:
one FID file serves ``fid`` and ``kid``, one FVD file ``fvd`` and ``kvd``. ``--no-features`` writes
the sums only (a 2048-d FID file is then 16.8 MB whatever the set size; features add 8 KB a frame).

Exit codes: 0 written (a sample-size warning is printed, and recorded again by FID/FVD when they
score); 1 no samples were found (nothing written); 2 bad reference or option; 3 weights missing
offline, no CUDA, disk full.
"""

from __future__ import annotations

import click

from interactive_eyes.app.cmd_common import EPILOG, exits, offline_mode


@click.command(epilog=EPILOG)
@click.argument("reference", type=click.Path(exists=True))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The .npz to write.")
@click.option("--metric", "metric_name", type=click.Choice(["fid", "fvd"]), default="fid", show_default=True)
@click.option("--dims", type=click.Choice(["64", "192", "768", "2048"]), default="2048", show_default=True,
              help="FID feature size (pytorch-fid block).")
@click.option("--frame-stride", type=int, default=1, show_default=True, help="FID: use every k-th video frame.")
@click.option("--clip-len", type=int, default=16, show_default=True, help="FVD: frames per clip.")
@click.option("--max-clips-per-video", type=int, default=None, help="FVD: at most this many clips per video.")
@click.option("--features/--no-features", "with_features", default=True, show_default=True,
              help="Also store every sample's features (needed by kid/kvd; 8 KB per FID frame, 1.6 KB per FVD clip).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1 ...")
@click.option("--offline", is_flag=True, default=False, help="Never download weights (also IE_BENCH_OFFLINE=1).")
def stats(reference: str, output: str, metric_name: str, dims: str, frame_stride: int, clip_len: int,
          max_clips_per_video: int | None, with_features: bool, device: str, offline: bool | None) -> None:
    """Compute FID/FVD (and KID/KVD) statistics of REFERENCE (a folder of videos and/or images, or one file)."""
    from interactive_eyes.app import exit_codes
    from interactive_eyes.app.checks import require_device
    from interactive_eyes.app.errors import DiskFull
    from interactive_eyes.metrics import METRICS
    from interactive_eyes.stats.frechet import sample_size_problem
    from interactive_eyes.stats.reference import save_reference

    cls = METRICS.get(metric_name)
    kwargs = {"device": device, "offline": offline or None}
    if metric_name == "fid":
        kwargs.update(dims=int(dims), frame_stride=frame_stride)
    else:
        kwargs.update(clip_len=clip_len, max_clips_per_video=max_clips_per_video)
    with exits(), offline_mode(offline):
        require_device(device)
        metric = cls(**kwargs)
        ref_set = metric.compute_reference_set(reference, features=with_features)
        st = ref_set.stats
        meta = {**metric.reference_meta(), **{f"param_{k}": v for k, v in metric.params().items()},
                "source": str(reference)}
        if st.count == 0:
            click.echo(f"Error: {reference}: no samples (no frames or clips) were found; nothing written", err=True)
            raise SystemExit(exit_codes.PARTIAL)
        try:
            path = save_reference(st, output, meta, features=ref_set.features)
        except OSError as exc:
            import errno

            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFull(f"{output}: cannot write ({exc.strerror})") from None
            raise
    problem = sample_size_problem(st.count, st.dim)
    kept = f", per-sample features stored (for {'kid' if metric_name == 'fid' else 'kvd'})" if with_features else ""
    click.echo(f"{path}: {st.count} samples, {st.dim}-d ({metric_name}){kept}")
    if problem:  # a warning, exit 0: the file is what was asked for; FID/FVD record the check again when scoring
        click.echo(f"warning: {problem}", err=True)
