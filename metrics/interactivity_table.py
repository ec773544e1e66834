"""Interactivity diagnostics: one row per frame and person (``--diagnostics`` CSV and video).

Not part of the value: the rows show, per frame, whether the person listens, the per-frame
displacement (paper: the script's; corrected: after camera compensation, in face units), whether
it is valid, whether a gate fired or the frame was rejected, whether it was used, the crop box
and the 22 points in frame pixels.
"""

from __future__ import annotations

import numpy as np

from interactive_eyes.metrics.interactivity_paper import decimal_intervals, in_closed_intervals, in_half_open_intervals


def frame_table(mode: str, state, r, boxes: np.ndarray, times: np.ndarray) -> list[dict]:
    """Per frame and person: listening, the per-frame displacement (paper: the script's; corrected:
    stabilised, face units), valid, outlier (a gate fired / a frame rejected), used, crop box, points."""
    rows = []
    for k, person in enumerate(state.ctx.clip.people):
        tr = r.tracks[k]
        if mode == "paper":
            crop = r.details["crop_size_M"]
            seg = decimal_intervals(person)
            t_list = np.asarray(state.index, dtype=np.float64) / (state.fps or 1.0)
        else:
            seg = person.speaking
            t_list = times
        for t, idx in enumerate(state.index):
            if mode == "paper":
                listening = not in_closed_intervals(t_list[t], seg)
                c = tr.centers[t]
                sq = None if not np.all(np.isfinite(c)) else [c[0] - crop / 2, c[1] - crop / 2,
                                                              c[0] + crop / 2, c[1] + crop / 2]
                outlier = bool(tr.center_outlier[t] or tr.landmark_outlier[t])
                used = bool(r.used[k][t])
            else:
                listening = not in_half_open_intervals(t_list[t], seg)
                box, sq = boxes[t, k], None
                if np.all(np.isfinite(box)) and np.isfinite(tr.side):
                    cx, cy = 0.5 * (box[0] + box[2]), 0.5 * (box[1] + box[3])
                    sq = [cx - tr.side / 2, cy - tr.side / 2, cx + tr.side / 2, cy + tr.side / 2]
                outlier = bool(tr.glitch[t] or tr.gap_edge[t] or tr.blank[t])
                prev_listening = t > 0 and not in_half_open_intervals(t_list[t - 1], seg)
                used = bool(listening and prev_listening and np.isfinite(tr.motion[t]))
            motion = tr.motion[t]
            rows.append(_row(idx, float(t_list[t]), person.role, listening, motion,
                                  bool(np.isfinite(motion)), outlier, used, sq, _eye_points(mode, state, t, k)))
    return rows

def _eye_points(mode: str, state, t: int, k: int) -> list | None:
    if state.points[t] is None:
        return None
    pts = state.points[t][k]
    if mode == "paper":
        pts = pts[list(state.eye_idx)]
    if not np.all(np.isfinite(pts)):
        return None
    return [[round(float(x), 2), round(float(y), 2)] for x, y in pts]

def _row(index, time, role, listening, motion, valid, outlier, used, box, points) -> dict:
    return {"frame": int(index), "time": round(time, 6), "person": role, "listening": bool(listening),
            "motion": None if not np.isfinite(motion) else float(motion), "valid": valid, "outlier": outlier,
            "used": used, "crop_box": None if box is None else [round(float(v), 2) for v in box],
            "points": points}
