"""Sync metric, scoring part: distance rows of a track, the speaking-window rule, the Sync-C* modes.

Step 5 of the pipeline in ``metrics/sync.py``'s docstring. Only the rows a score reads are computed
(``score_rows``): the offset search of ``syncnet.score_distances`` reads row i's 31 distances to
audio windows i-15..i+15, so audio windows outside those ranges are never embedded, and the values
equal those of the full matrix. ``score_person`` gives one speaking person's Sync-C* in the modes
``mask``, ``segment`` and ``framewise`` (spec §1.8, ``docs/sync.md``).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from interactive_eyes.metrics import syncnet as sn
from interactive_eyes.metrics.sync_tracks import Embedder, Track


def slots_audio(audio: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Samples of 25 fps slots [start, stop): the reference's ``ffmpeg -ss start/25 -to stop/25``."""
    return audio[start * sn.SAMPLES_PER_FRAME : stop * sn.SAMPLES_PER_FRAME]


def score_rows(
    embedder: Embedder,
    video: dict[int, torch.Tensor],
    audio: np.ndarray,
    n_frames: int,
    rows: list[int],
    video_offset: int = 0,
) -> tuple[torch.Tensor, int]:
    """Distances (len(rows) x 31) of the clip made of ``n_frames`` crops and ``audio`` (already
    sliced to start with the first crop): rows are window indices of that clip, video embeddings
    are ``video[video_offset + row]``. Returns (dists, n_win of the clip)."""
    n_win = sn.n_windows(n_frames, len(audio))
    rows = [r for r in rows if r < n_win and video_offset + r in video]
    if not rows:
        return torch.zeros(0, 2 * sn.VSHIFT + 1), n_win
    needed = sorted({j for r in rows for j in range(r - sn.VSHIFT, r + sn.VSHIFT + 1) if 0 <= j < n_win})
    a_needed = embedder.audio(sn.compute_mfcc(audio), needed)
    a = torch.zeros(n_win, a_needed.shape[1])  # zero rows are never read: only ``needed`` ones are
    a[needed] = a_needed
    v = torch.zeros(n_win, a_needed.shape[1])
    v[rows] = torch.stack([video[video_offset + r] for r in rows])
    return sn.distance_matrix(v, a, rows), n_win


def ranges(values: list[int]) -> list[list[int]]:
    """Sorted integers -> [[first, last + 1], ...] runs."""
    out: list[list[int]] = []
    for v in values:
        if out and v == out[-1][1]:
            out[-1][1] = v + 1
        else:
            out.append([v, v + 1])
    return out


def slot_speaking(segments, slot: int) -> bool:
    """Slot j (time j/25) is speaking when s <= j/25 < e for some segment: the half-open rule of
    ``Person.is_speaking``, applied to the 25 fps frame times."""
    t = slot / sn.FPS
    return any(s <= t < e for s, e in segments)


def window_speaking(segments, start: int) -> bool:
    """The window of slots [start, start + 5) lies entirely inside the speaking segments."""
    return start >= 0 and all(slot_speaking(segments, j) for j in range(start, start + sn.FRAMES_PER_WINDOW))


def speaking_slots(segments, n_slots: int) -> np.ndarray:
    """``slot_speaking`` for slots 0 .. n_slots-1."""
    return np.array([slot_speaking(segments, j) for j in range(n_slots)], dtype=bool)


def window_inside(speaking: np.ndarray, start: int) -> bool:
    """``window_speaking`` on a precomputed ``speaking_slots`` array."""
    stop = start + sn.FRAMES_PER_WINDOW
    return 0 <= start and stop <= speaking.size and bool(speaking[start:stop].all())



def needed_windows(mode: str, segments) -> Callable[[int], bool]:
    """Which windows a person's Sync-C* reads: those inside their speaking segments (mask, segment)
    or all (framewise); the others are never embedded."""
    if mode == "framewise":
        return lambda _slot: True
    segments = tuple(segments)
    return lambda slot: window_speaking(segments, slot)


def score_tracks(emb: Embedder, tracks: list[Track], audio: np.ndarray, limits: tuple[int, float] | None = None):
    """Single-person clip: each track against its slice of the video's audio, as the reference scores
    a crop (spec §1.4). ``limits`` (detector s3fd): (min_track, min_face_size) below which a track
    is dropped, the reference's filters. Returns (one record per track, (track, score) of the longest
    scored track or None): the longest track gives the clip's value (spec §1.8)."""
    rows_out = []
    best = None
    for t in tracks:
        rec: dict[str, Any] = {
            "start_slot": t.start,
            "n_slots": t.n_slots,
            "n_detections": t.n_dets,
            "mean_face_size": round(t.mean_face_size(), 2),
        }
        if limits is not None:
            min_track, min_face_size = limits
            if t.n_dets <= min_track:
                rec["dropped"] = f"{t.n_dets} detections <= min_track {min_track}"
            elif t.mean_face_size() <= min_face_size:
                rec["dropped"] = f"mean face size {t.mean_face_size():.1f} px <= min_face_size {min_face_size:g}"
        if "dropped" not in rec:
            a = slots_audio(audio, t.start, t.end)
            d, _ = score_rows(emb, t.embeddings, a, t.n_slots, list(range(t.n_slots)))
            if d.shape[0] == 0:
                rec["dropped"] = f"too short: {t.n_slots} frames give no window"
            else:
                s = sn.score_distances(d)
                rec.update(s.as_dict())
                if best is None or t.n_slots > best[0].n_slots:
                    best = (t, s)
        rows_out.append(rec)
    return rows_out, best


def person_record(mode: str, emb: Embedder, person, tracks: list[Track], n_slots: int, audio: Callable[[], np.ndarray]) -> dict:
    """One person's entry in a multi-person clip's ``details["people"]``; ``audio()`` (their own track,
    int16 scale, 16 kHz) is read only when they speak. ``n_speaking_windows`` (mask mode): the
    clip's windows lying inside their speaking segments, tracked or not."""
    rec: dict[str, Any] = {"speaks": person.speaks, "tracks": [[t.start, t.end] for t in tracks]}
    if not person.speaks:
        rec["reason"] = "does not speak"
        return rec
    speaking = speaking_slots(person.speaking, n_slots + sn.FRAMES_PER_WINDOW)
    rec.update(score_person(mode, emb, tracks, audio(), speaking))
    if mode == "mask":
        segments = tuple(person.speaking)
        rec["n_speaking_windows"] = sum(
            window_speaking(segments, j) for j in range(max(0, n_slots - sn.FRAMES_PER_WINDOW + 1))
        )
    return rec


def score_people(mode: str, weighting: str, emb: Embedder, people: list, n_slots: int, person_audio: Callable[[int], np.ndarray]):
    """Sync-C* of a multi-person clip from ``people`` = [(person, their tracks), ...] in manifest order;
    ``person_audio(k)`` reads person k's own audio track. The value is the mean over the speaking
    people, weighted by person or by kept window (``weighting``). Returns (records by role, value by
    role, failures, value, sync_d); value and sync_d are None when a speaking person was not scored
    or nobody speaks."""
    records: dict[str, Any] = {}
    per_value: dict[str, float | None] = {}
    values, weights, dists, failures = [], [], [], []
    for k, (person, tracks) in enumerate(people):
        rec = person_record(mode, emb, person, tracks, n_slots, lambda k=k: person_audio(k))
        per_value[person.role] = rec.get("value")
        records[person.role] = rec
        if not person.speaks:
            continue
        if rec.get("value") is None:
            failures.append(f"{person.role}: {rec.get('reason', 'no score')}")
        else:
            values.append(rec["value"])
            weights.append(rec["n_windows"])
            dists.append(rec["sync_d"])
    if failures or not values:
        return records, per_value, failures, None, None
    w = weights if weighting == "window" else None
    return records, per_value, failures, float(np.average(values, weights=w)), float(np.average(dists, weights=w))


def score_person(mode: str, emb: Embedder, tracks: list[Track], audio: np.ndarray, speaking: np.ndarray) -> dict:
    """One speaking person's Sync-C* (``mode``: mask, segment or framewise) from their tracks, their own
    audio track (int16 scale, 16 kHz) and ``speaking_slots`` of their segments."""
    if mode == "segment":
        return score_segments(emb, tracks, audio, speaking)
    all_rows, kept_global, fconf_kept, track_dists = [], [], [], []
    for t in tracks:
        a = slots_audio(audio, t.start, t.end)
        n_win = sn.n_windows(t.n_slots, len(a))
        kept = [w for w in range(n_win) if window_inside(speaking, t.start + w)]
        if mode == "mask":
            d, _ = score_rows(emb, t.embeddings, a, t.n_slots, kept)
            all_rows.append(d)
        else:  # framewise: the track's own offset search over all its windows, conf per window
            d, _ = score_rows(emb, t.embeddings, a, t.n_slots, list(range(n_win)))
            if d.shape[0] == 0:
                continue
            score = sn.score_distances(d)
            fconf = sn.framewise_confidence(d, score)
            fconf_kept.extend(float(fconf[w]) for w in kept)
            if kept:
                track_dists.append((score.min_dist, len(kept)))
        kept_global.extend(t.start + w for w in kept)
    out: dict[str, Any] = {"kept_windows": ranges(kept_global), "n_windows": len(kept_global)}
    if not kept_global:
        out["value"] = None
        out["reason"] = "face not tracked in any complete 5-frame window inside the speaking segments"
        return out
    if mode == "mask":
        s = sn.score_distances(torch.cat(all_rows))
        out.update(s.as_dict())
        out["value"] = s.confidence
    else:  # framewise: Sync-D of each track's own offset search, weighted by its kept windows
        out["value"] = float(np.mean(fconf_kept))
        out["sync_c"] = out["value"]
        out["sync_d"] = float(np.average([d for d, _ in track_dists], weights=[n for _, n in track_dists]))
    out["n_windows"] = len(kept_global)
    return out

def score_segments(emb: Embedder, tracks: list[Track], audio: np.ndarray, speaking: np.ndarray) -> dict:
    """segment mode: cut each speaking run of each track into its own clip (crops and audio),
    score it as the reference scores a clip, and take the mean weighted by windows."""
    segs = []
    kept_global = []
    for t in tracks:
        sp = speaking[t.start : t.end]
        j = 0
        while j < sp.size:
            if not sp[j]:
                j += 1
                continue
            k = j
            while k < sp.size and sp[k]:
                k += 1
            a = slots_audio(audio, t.start + j, t.start + k)
            n_win = sn.n_windows(k - j, len(a))
            if n_win >= 1:
                d, _ = score_rows(emb, t.embeddings, a, k - j, list(range(n_win)), video_offset=j)
                s = sn.score_distances(d)
                segs.append({"start_slot": t.start + j, "n_slots": k - j, **s.as_dict()})
                kept_global.extend(t.start + j + w for w in range(n_win))
            j = k
    out: dict[str, Any] = {"segments": segs, "kept_windows": ranges(kept_global), "n_windows": len(kept_global)}
    if not segs:
        out["value"] = None
        out["reason"] = "no speaking segment with a tracked face long enough for one window (6 frames)"
        return out
    w = np.array([s["n_windows"] for s in segs], dtype=float)
    out["value"] = float(np.average([s["sync_c"] for s in segs], weights=w))
    out["sync_c"] = out["value"]
    out["sync_d"] = float(np.average([s["sync_d"] for s in segs], weights=w))
    return out
