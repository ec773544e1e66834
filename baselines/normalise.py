"""From what a method wrote to what the metrics read (spec/baselines.md §5.4, steps 1, 3, 4).

``normalise(raw, out_path, ...)``:

1. checks that the raw file runs at the method's declared native fps (AnyTalker without
   ``--sample_fps 24`` writes 16 fps and would play 1.5x too long: that is an error, not
   something to resample away);
2. drops the declared lead-in frames, so frame 0 is audio t = 0 (OmniAvatar's reference frame
   and 0.3 s of prepended silence, for example);
3. keeps exactly ``frame_count(T, fps) = round(fps * T)`` frames at the **native** fps (no
   frame-rate conversion: duplicated frames would bias smoothness metrics); a short output is
   padded by repeating its last frame and the padding is recorded (``valid_frames``,
   ``padded_frames``);
4. muxes the **benchmark mix** (never the method's own: AnyTalker's ``amix`` is quieter,
   MultiTalk loudness-normalises, Bind-Your-Avatar shifts by 0.08 s) with
   ``interactive_eyes.media.video.write_video`` (H.264 yuv420p crf 18, written under a temporary
   name and renamed);
5. writes ``geometry.json``: the analytic reference -> output map, checked by registering output
   frame 0 against the reference (``geometry.checked``), with both residuals.

The raw file is only read, never modified.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

FPS_TOLERANCE = 0.01  # relative: 25 vs 24.9 passes, 24 vs 25 does not


class NormaliseError(RuntimeError):
    """The raw output does not match what the method declares; one line naming the file."""


def normalise(
    raw: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    fps: float,
    duration: float,
    mix,
    audio_rate: int,
    lead_in_frames: int = 0,
    reference=None,
    geometry_fn: Callable | None = None,
    geometry_path: str | os.PathLike | None = None,
    crf: int = 18,
) -> dict:
    """Write ``out_path`` from ``raw``; returns the facts recorded in run.json (see module doc).

    ``reference``: RGB uint8 reference image (what the method was given, at the benchmark's
    resolution); ``geometry_fn(ref_size, out_size) -> Geometry``: the method's analytic map.
    """
    from interactive_eyes.baselines.base import frame_count
    from interactive_eyes.media.video import iter_frames, probe, write_video

    raw = Path(raw)
    info = probe(raw)
    if abs(info.fps - fps) > FPS_TOLERANCE * fps:
        raise NormaliseError(f"{raw}: {info.fps:g} fps, but the method's native rate is {fps:g} fps")
    if lead_in_frames < 0:
        raise ValueError(f"lead_in_frames must be >= 0, got {lead_in_frames}")
    n = frame_count(duration, fps)
    facts = {"raw": str(raw), "raw_frames": info.n_frames, "raw_size": [info.width, info.height], "raw_fps": info.fps}
    state = {"valid": 0, "first": None}

    def frames():
        last = None
        for f in iter_frames(raw):
            if f.index < lead_in_frames:
                continue
            if state["valid"] == n:
                return
            if state["first"] is None:
                state["first"] = f.rgb
            last = f.rgb
            state["valid"] += 1
            yield last
        if last is None:
            raise NormaliseError(f"{raw}: {info.n_frames} frames, all within the {lead_in_frames}-frame lead-in")
        for _ in range(n - state["valid"]):
            yield last

    write_video(out_path, frames(), fps, audio=mix, audio_rate=audio_rate, crf=crf)
    valid = state["valid"]
    facts.update(frames=n, fps=fps, lead_in_dropped=lead_in_frames, valid_frames=valid, padded_frames=n - valid,
                 trimmed_frames=max(0, info.n_frames - lead_in_frames - n), width=info.width, height=info.height,
                 duration=n / fps)
    if reference is not None and geometry_fn is not None:
        analytic = geometry_fn((reference.shape[1], reference.shape[0]), (info.width, info.height))
        frame0 = state["first"]
        if frame0.shape[:2] != (info.height, info.width):  # odd sizes: write_video padded, the decode did not
            frame0 = frame0[: info.height, : info.width]
        from interactive_eyes.baselines.geometry import checked

        geo = checked(reference, frame0, analytic)
        facts["geometry"] = geo
        if geometry_path is not None:
            Path(geometry_path).write_text(json.dumps(geo, indent=2) + "\n")
    return facts
