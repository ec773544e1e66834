"""``ie-bench interactivity VIDEO --clip ID``: the Interactivity metric on one video.

Scoring goes through the engine's ``analyze_clip`` (one streaming decode, the face tracker, the
metric), exactly as ``ie-bench score`` does for a whole folder. ``--diagnostics DIR`` adds a
per-frame CSV (frame, time, person, listening, motion, valid, outlier, used) and an MP4 with each
person's 22 eye/eyebrow keypoints, crop box and running motion drawn on the frames; drawing
needs the frames again, so only then is the video decoded a second time.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from interactive_eyes.app.exit_codes import HELP_EPILOG

CSV_COLUMNS = ("frame", "time", "person", "listening", "motion", "valid", "outlier", "used")
# corrected mode: "motion" is the per-frame displacement after camera compensation (face units);
# the value itself is computed on a fixed 1/25 s grid (see docs/interactivity.md)
# one colour per person (RGB), cycling for N > 6; keypoints of an outlier frame are drawn white
COLOURS = ((255, 165, 0), (80, 170, 255), (90, 220, 90), (255, 230, 60), (200, 100, 255), (60, 220, 220))
OUTLIER_COLOUR = (255, 255, 255)


def score_video(video: str | os.PathLike, clip, *, mode: str = "corrected", backend: str = "mediapipe-tasks",
                device: str = "cpu", frame_table: bool = False, camera: bool = True):
    """Interactivity of one video for one manifest clip -> ``ClipResult`` (never raises for bad input:
    an unreadable video or an unscorable clip comes back as a failed result with its reason)."""
    from interactive_eyes.app.engine import EngineOptions, analyze_clip
    from interactive_eyes.metrics.interactivity import Interactivity

    metric = Interactivity(mode=mode, frame_table=frame_table, camera=camera)
    # Interactivity reads no audio, so a silent video is scored here (``ie-bench score`` applies
    # the engine's own policy to generated videos without audio).
    options = EngineOptions(device=device, landmark_backend=backend, allow_silent=True)
    return analyze_clip(video, clip, [metric], options=options)[metric.name]


def write_frame_csv(path: str | os.PathLike, rows: list[dict]) -> Path:
    import pandas as pd

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame([{c: r[c] for c in CSV_COLUMNS} for r in rows], columns=list(CSV_COLUMNS))
    frame = frame.sort_values(["frame", "person"], kind="stable")
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    frame.to_csv(tmp, index=False, float_format="%.6g")
    os.replace(tmp, path)
    return path


def annotated_frames(video: str | os.PathLike, rows: list[dict], roles: list[str]):
    """Decode ``video`` again and draw, per person, the scored keypoints, the crop box, and the
    per-frame motion with the running mean of the frames used so far."""
    import cv2

    from interactive_eyes.media.video import iter_frames

    by_frame: dict[int, dict[str, dict]] = {}
    for r in rows:
        by_frame.setdefault(r["frame"], {})[r["person"]] = r
    running = {role: [0.0, 0] for role in roles}
    for frame in iter_frames(video):
        img = frame.rgb.copy()
        scale = max(1.0, img.shape[1] / 832.0)  # text and dots readable at any resolution
        for k, role in enumerate(roles):
            r = by_frame.get(frame.index, {}).get(role)
            if r is None:
                continue
            colour = COLOURS[k % len(COLOURS)]
            if r["used"] and r["motion"] is not None:
                running[role][0] += r["motion"]
                running[role][1] += 1
            if r["crop_box"] is not None:
                x1, y1, x2, y2 = (int(round(v)) for v in r["crop_box"])
                cv2.rectangle(img, (x1, y1), (x2, y2), colour, max(1, int(scale)))
            for x, y in r["points"] or []:
                cv2.circle(img, (int(round(x)), int(round(y))), max(1, int(2 * scale)),
                           OUTLIER_COLOUR if r["outlier"] else colour, -1, cv2.LINE_AA)
            total, n = running[role]
            motion = "-" if r["motion"] is None else f"{r['motion']:.2f}"
            state = "listening" if r["listening"] else "speaking"
            text = f"{role} {state} motion {motion} mean {total / n if n else 0:.2f}" + (" OUTLIER" if r["outlier"] else "")
            org = (int(8 * scale), int((22 + 22 * k) * scale))
            cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.55 * scale, (0, 0, 0), int(3 * scale), cv2.LINE_AA)
            cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.55 * scale, colour, max(1, int(scale)), cv2.LINE_AA)
        yield img


def write_diagnostics(video: str | os.PathLike, result, clip, out_dir: str | os.PathLike) -> dict[str, Path]:
    """``<out_dir>/<video stem>_interactivity.csv`` and ``..._interactivity.mp4``."""
    from interactive_eyes.media.video import probe, write_video

    rows = result.details.get("frame_table")
    if rows is None:
        raise ValueError(f"{video}: no per-frame table to write ({result.reason or 'the metric did not produce one'})")
    out_dir = Path(out_dir)
    stem = Path(video).stem
    csv_path = write_frame_csv(out_dir / f"{stem}_interactivity.csv", rows)
    mp4_path = write_video(out_dir / f"{stem}_interactivity.mp4",
                           annotated_frames(video, rows, [p.role for p in clip.people]), probe(video).fps)
    return {"csv": csv_path, "mp4": mp4_path}


def format_result(result, clip_id: str) -> str:
    d = result.details
    lines = [f"clip {clip_id}: interactivity ({d.get('mode')}, {d.get('backend')}) {result.status}"]
    if result.status != "ok":
        lines.append(f"  reason: {result.reason}")
        return "\n".join(lines)
    counts = d.get("per_person", {})
    if d.get("mode") == "paper":
        pp25 = d.get("per_person_25fps", {})
        for role, v in result.per_person.items():
            used = counts.get(role, {}).get("n_listening_frames_used", 0)
            if v is None:
                lines.append(f"  {role:>8}: -  (no listening frames)")
            else:
                lines.append(f"  {role:>8}: {v:.4f} per frame, {pp25[role]:.4f} per 1/25 s  ({used} listening frames)")
        lines.append(f"  {'overall':>8}: {result.value:.4f} per frame, {d['interactivity_25fps']:.4f} per 1/25 s "
                     f"at {d['fps']:g} fps ({d['n_listening_frames_used']} listening frames used)")
        return "\n".join(lines)
    for role, v in result.per_person.items():
        c = counts.get(role, {})
        if v is None:
            lines.append(f"  {role:>8}: -  (no listening steps)")
            continue
        rej = c.get("n_rejected", {})
        lines.append(f"  {role:>8}: {v:.4f} per 1/25 s, noise floor {c.get('noise_floor', float('nan')):.3f}  "
                     f"({c.get('n_listening_steps_used', 0)} of {c.get('n_listening_steps', 0)} listening steps; "
                     f"rejected frames: {rej.get('glitch', 0)} glitch, {rej.get('gap_edge', 0)} gap edge, "
                     f"{rej.get('blank_crop', 0)} blank crop; {c.get('n_missing_frames', 0)} missing)")
    lines.append(f"  {'overall':>8}: {result.value:.4f} per 1/25 s at {d['fps']:g} fps "
                 f"({d['n_listening_steps_used']} of {d['n_listening_steps']} listening steps used)")
    cam = d.get("camera", {})
    if cam.get("compensated"):
        share = cam.get("share_removed")
        lines.append(f"  camera: {cam.get('mean_motion_px') or 0.0:.3f} px/frame removed"
                     + (f" ({share:.1%} of the value)" if share is not None else "")
                     + f", {cam.get('n_fallback_steps', 0)} of {cam.get('n_steps', 0)} steps without an estimate"
                     + (f"; source: {cam['source']}" if cam.get("source") else ""))
    else:
        lines.append(f"  camera: not compensated ({cam.get('reason')})")
    return "\n".join(lines)


@click.command("interactivity", epilog=HELP_EPILOG)
@click.argument("video", type=click.Path(exists=True, dir_okay=False))
@click.option("--clip", "clip_id", help="Manifest clip id (default: the video's file name, e.g. interact_11.mp4).")
@click.option("--manifest", help="Manifest file or shipped manifest name (default: interactive_eyes).")
@click.option("--mode", type=click.Choice(["corrected", "paper"]), default="corrected", show_default=True,
              help="corrected: fixed rules (default); paper: the AnyTalker script's rules.")
@click.option("--backend", default="mediapipe-tasks", show_default=True,
              help="Landmark backend: mediapipe-tasks (current MediaPipe model), mediapipe (legacy 0.10.21 graph, "
                   "the 'legacy' extra), face-alignment or insightface.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1, ...")
@click.option("--camera/--no-camera", default=True, show_default=True,
              help="corrected mode: remove the camera's motion, estimated from the background.")
@click.option("--diagnostics", "diag_dir", type=click.Path(file_okay=False),
              help="Write a per-frame CSV and an annotated MP4 into this folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
def interactivity(video, clip_id, manifest, mode, backend, device, camera, diag_dir, as_json):
    """Interactivity (listener eye/eyebrow motion) of one VIDEO, per person and overall."""
    from interactive_eyes.app.store import dumps
    from interactive_eyes.data.manifest import ManifestError, load
    from interactive_eyes.faces.landmarks import canonical_name

    from interactive_eyes.app import exit_codes
    from interactive_eyes.app.checks import require_device
    from interactive_eyes.app.cmd_common import exits

    try:
        bench = load(manifest)
    except (ManifestError, FileNotFoundError) as exc:
        raise exit_codes.UsageError(str(exc)) from None
    clip_id = clip_id or Path(video).stem
    try:
        clip = bench.clip(clip_id)
    except KeyError as exc:
        raise exit_codes.UsageError(f"{video}: {exc.args[0]} (use --clip)") from None
    try:
        backend = canonical_name(backend)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--backend") from None
    with exits():  # an optional backend not installed, --device cuda without CUDA: exit 3
        require_device(device)
        result = score_video(video, clip, mode=mode, backend=backend, device=device, frame_table=bool(diag_dir),
                             camera=camera)
    written = {}
    if diag_dir and result.details.get("frame_table") is not None:
        written = write_diagnostics(video, result, clip, diag_dir)
    if as_json:
        details = {k: v for k, v in result.details.items() if k != "frame_table"}
        click.echo(dumps({"clip": clip.id, "metric": result.metric, "status": result.status, "reason": result.reason,
                          "value": result.value, "per_person": result.per_person, "details": details,
                          "diagnostics": {k: str(v) for k, v in written.items()}}, indent=1))
    else:
        click.echo(format_result(result, clip.id))
        for kind, path in written.items():
            click.echo(f"  diagnostics {kind}: {path}")
    if result.status != "ok":
        raise SystemExit(1)
