"""Check a folder of generated videos before any model runs.

For every clip of the manifest the checks ``score`` applies (``app/checks.py``, one shared
function): the file exists under its exact name (and not twice in different case), is readable,
decodes (every frame with ``decode=True``, so mid-stream corruption is caught), has an audio
stream, a frame rate in [10, 60] fps and a duration within one frame of the clip's; then, as
``validate``'s own extra, as many faces on its first frame as the clip has people. Files that
match no clip are reported (with a did-you-mean for misnamed ones). Each problem is one row:
level error|warning, clip, file, what is wrong.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from interactive_eyes.app.checks import MAX_FPS, MIN_FPS, check_video, plan_inputs  # noqa: F401


@dataclass
class Check:
    clip: str
    file: str
    level: str  # "ok" | "warning" | "error"
    message: str
    fps: float | None = None
    duration: float | None = None
    size: str | None = None
    faces: int | None = None


_LOCATORS: dict[int, object] = {}


def count_faces(rgb, max_faces: int) -> int:
    """Faces on one frame (up to ``max_faces``), by the same whole-frame pass the face tracks use."""
    from interactive_eyes.faces.track import face_locator

    if max_faces not in _LOCATORS:
        _LOCATORS[max_faces] = face_locator(max_faces)
    return len(_LOCATORS[max_faces].locate(rgb))


def validate_dir(generated_dir: str | os.PathLike, benchmark, *, clips: list[str] | None = None,
                 check_faces: bool = True, decode: bool = True, limit: int | None = None,
                 strict: bool = False) -> list[Check]:
    """One row per clip (and per extra file). ``strict``: stop at the first error (``StrictStop``)."""
    from interactive_eyes.app.errors import StrictStop
    from interactive_eyes.media.errors import MediaError
    from interactive_eyes.media.video import iter_frames

    generated_dir = Path(generated_dir)
    if not generated_dir.is_dir():
        raise FileNotFoundError(f"{generated_dir}: not a folder")
    if limit is not None and limit < 1:
        raise ValueError(f"--limit {limit}: must be a positive number of clips")
    clip_ids = list(clips) if clips else benchmark.clip_ids
    for cid in clip_ids:
        benchmark.clip(cid)  # unknown ids: KeyError with a suggestion
    if limit:
        clip_ids = clip_ids[:limit]
    plans, extras = plan_inputs(generated_dir, benchmark, clip_ids)
    rows: list[Check] = []

    def add(row: Check) -> None:
        rows.append(row)
        if strict and row.level == "error":
            raise StrictStop(f"--strict: {row.clip} {row.file}: {row.message}")

    for cid, plan in plans.items():
        if plan.video is None:
            add(Check(cid, f"{cid}.mp4", "error", plan.problem.split(": ", 1)[-1] if plan.problem else "missing file"))
            continue
        name = plan.video.name
        checked = check_video(plan.video, plan.clip, decode=decode)
        problems = list(checked.problems)
        info = checked.info
        n_faces = None
        if info is None:
            add(Check(cid, name, "error", "; ".join(m for _, m in problems)))
            continue
        if check_faces and info.n_frames and checked.ok:
            try:
                first = next(iter_frames(plan.video))
                n_faces = count_faces(first.rgb, plan.clip.n_people + 2)
                if n_faces != plan.clip.n_people:
                    level = "error" if n_faces < plan.clip.n_people else "warning"
                    problems.append((level, f"{n_faces} face(s) on the first frame, clip has {plan.clip.n_people} people"))
            except MediaError as exc:
                problems.append(("error", exc.reason))
        level = "error" if any(lv == "error" for lv, _ in problems) else ("warning" if problems else "ok")
        add(Check(cid, name, level, "; ".join(m for _, m in problems) or "ok", fps=info.fps,
                  duration=info.duration, size=f"{info.width}x{info.height}", faces=n_faces))
    for e in extras:
        hint = f"not a clip of {benchmark.name}" + (f" (did you mean {e['did_you_mean']}?)" if e["did_you_mean"] else "")
        add(Check("-", e["file"], "warning" if not e["did_you_mean"] else "error", hint))
    return rows


def format_checks(rows: list[Check]) -> str:
    header = ("clip", "file", "status", "fps", "duration", "size", "faces", "problem")
    table = [header]
    for r in rows:
        table.append((r.clip, r.file, r.level, "" if r.fps is None else f"{r.fps:.3g}",
                      "" if r.duration is None else f"{r.duration:.2f}", r.size or "",
                      "" if r.faces is None else str(r.faces), "" if r.level == "ok" else r.message))
    widths = [max(len(t[i]) for t in table) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(t, widths)).rstrip() for t in table]
    n_err = sum(r.level == "error" for r in rows)
    n_warn = sum(r.level == "warning" for r in rows)
    lines.append(f"{len(rows)} rows: {n_err} error(s), {n_warn} warning(s)")
    return "\n".join(lines)
