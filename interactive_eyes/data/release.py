"""The InteractiveEyes release as published with AnyTalker, and the builder of its manifest.

Facts about the release (where the files are, the YouTube sources of the reference frames) live
here; ``build_manifest`` turns the released ``speaker_duration.json`` plus the audio files into
``data/manifests/interactive_eyes.json``. Run ``python -m interactive_eyes.data.release ROOT``
to rebuild it from a data root holding the release.

The released segment values are ``seconds.frames`` timecodes at 30 fps, not decimal seconds:
their fractional part never exceeds .29, and read as timecodes the end times match the audio
lengths within one frame and Silero VAD turn boundaries within 0.03 s (median), against 0.41 s
when read as decimals (docs/interactive_eyes.md). The manifest keeps both the raw values and the
converted seconds.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPOSITORY = "HKUST-C4G/AnyTalker"
COMMIT = "e5490b60dc6add439ff5ecec5bd7559606a78d53"
FOLDER = "benchmark"
RAW_URL = f"https://raw.githubusercontent.com/{REPOSITORY}/{COMMIT}/{FOLDER}/{{path}}"
ANNOTATION_FILE = "speaker_duration.json"
TIMECODE_FPS = 30
N_CLIPS = 29

# sha256 of released files the manifest does not pin (from the release's original_sha256 list):
# the real ground-truth video of clip 11, shipped as benchmark/interact_11.mp4.
RELEASED_VIDEO_SHA256 = {
    "interact_11.mp4": "72089b75a338c5c6c330e76fed3320e0c2e9c65d951f79fdf3957c414a3c9642",
}

# The release has no per-clip prompts; AnyTalker's own example for clip 11 (its 2p-0 input) uses
# this caption, so it serves as the one generic two-person prompt.
GENERIC_PROMPT = "The two people are talking to each other."

# YouTube id and reference (first) frame time of each clip, from the release's download script.
# interact_10 is missing there (the script lists interact_18 twice): recorded, not invented.
YOUTUBE = {
    1: ("3ePLfh4LRlc", 0),
    2: ("yrOGWaoRfKQ", 3),
    3: ("K95kpB0zNqc", 39),
    4: ("3ch44DSNnsM", 1),
    5: ("OZqGUFivO3o", 4 * 60 + 12),
    6: ("j-aEBQpeEy4", 6 * 60),
    7: ("BkhsWikdKq8", 2 * 60 + 9),
    8: ("7EOE4nU4Gks", 2 * 60 + 48),
    9: ("616yuKq1aeg", 1),
    10: (None, None),
    11: ("K9wBEUaTEQU", 2 * 60 + 22),
    12: ("kHmgRtNWOi0", 8),
    13: ("iJhkuhrz5OE", 15 * 60 + 9),
    14: ("yteOxz21duo", 7 * 60),
    15: ("0pELFCq43cw", 5),
    16: ("aN7nKjBVD2o", 10 * 60 + 31),
    17: ("3lC7N4c6Kpo", 60 + 40),
    18: ("LFdQ7ZiSDAs", 39),
    19: ("-112sJWNAYw", 59),
    20: ("meQn39gSXe4", 6),
    21: ("8e3Xxfsh2M4", 11 * 60 + 56),
    22: ("3tKsPdQ1s8Q", 2 * 60 + 10),
    23: ("2Znrk3JyKks", 35 * 60 + 52),
    24: ("YacHIjPkK7k", 60 + 15),
    25: ("3mzUmy4oqCI", 9 * 60 + 24),
    26: ("6e8TE6n_R9s", 60 + 8),
    27: ("-qb-FZzN2rY", 32),
    28: ("VCynlBiZsdI", 6),
    29: ("lm83VcaAhYA", 0),
}


def clip_ids() -> list[str]:
    return [f"interact_{i}" for i in range(1, N_CLIPS + 1)]


def audio_relpath(clip_id: str, role: str, ext: str = "wav") -> str:
    return f"audio_{role}/{clip_id}_{role}.{ext}"


def released_files() -> list[str]:
    """Paths (relative to the release folder and to the data root) of every released file."""
    files = [ANNOTATION_FILE]
    for cid in clip_ids():
        for role in ("left", "right"):
            files.append(audio_relpath(cid, role))
    return files


def file_url(relpath: str) -> str:
    return RAW_URL.format(path=relpath)


def convert_segments(raw: list[list[float]]) -> list[list[float]]:
    """Released timecode segments -> seconds. ``[[0.0, 0.0]]`` (never speaks) -> ``[]``.

    ``ValueError`` naming the segment for a value that is not a 30 fps ``seconds.frames``
    timecode (``.30`` and above, three decimals, negative) or a pair that is not ``[start, end]``.
    """
    from interactive_eyes.data.manifest import timecode_to_seconds

    out = []
    for j, seg in enumerate(raw):
        if not isinstance(seg, (list, tuple)) or len(seg) != 2:
            raise ValueError(f"[{j}]: {seg!r} is not a [start, end] pair")
        try:
            s2, e2 = timecode_to_seconds(seg[0], TIMECODE_FPS), timecode_to_seconds(seg[1], TIMECODE_FPS)
        except ValueError as exc:
            raise ValueError(f"[{j}]: {exc}") from None
        if e2 < s2:
            raise ValueError(f"[{j}]: {list(seg)!r} ends before it starts")
        if e2 > s2:
            out.append([s2, e2])
    return out


def build_manifest(root: str | Path, file_sha256: dict[str, str]) -> dict:
    """Build the manifest object from a data root holding the release (WAV or FLAC copies).

    ``file_sha256``: sha256 of each ORIGINAL released file by relative path (the FLAC copies
    cannot give those); the PCM hashes are computed here from whatever copy is present.
    """
    import hashlib

    from interactive_eyes.data.manifest import SCHEMA, SCHEMA_VERSION, ManifestError, complement
    from interactive_eyes.data.paths import find_audio
    from interactive_eyes.media.audio import pcm_sha256

    root = Path(root)
    ann_path = root / ANNOTATION_FILE
    try:
        annotations = json.loads(ann_path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{ann_path}: not UTF-8 JSON ({exc})") from None
    clips = []
    for cid in clip_ids():
        ann = annotations.get(f"{cid}.mp4") if isinstance(annotations, dict) else None
        if not isinstance(ann, dict) or not all(isinstance(ann.get(r), list) for r in ("left", "right")):
            raise ManifestError(f"{ann_path}: {cid}.mp4: missing, or without 'left' and 'right' segment lists")
        speaking = {}
        for role in ("left", "right"):
            try:
                speaking[role] = convert_segments(ann[role])
            except ValueError as exc:
                raise ManifestError(f"{ann_path}: {cid}.mp4: {role}{exc}") from None
        people = []
        n_samples = []
        for role in ("left", "right"):
            rel = audio_relpath(cid, role)
            digest, info = pcm_sha256(find_audio(root, rel))
            n = round(info.duration * info.sample_rate)
            n_samples.append(n / info.sample_rate)
            people.append(
                {
                    "role": role,
                    "audio": rel,
                    "audio_sha256": file_sha256[rel],
                    "pcm_sha256": digest,
                    "sample_rate": info.sample_rate,
                    "channels": info.channels,
                    "n_samples": n,
                    "speaking_raw": ann[role],
                    "speaking": speaking[role],
                }
            )
        duration = max(n_samples)
        for p in people:
            p["listening"] = [list(s) for s in complement([tuple(s) for s in p["speaking"]], duration)]
        yt, t0 = YOUTUBE[int(cid.split("_")[1])]
        reference = (
            {"youtube_id": yt, "time": float(t0)}
            if yt
            else {"youtube_id": None, "time": None, "note": "no source listed in the release's download script"}
        )
        clips.append(
            {
                "id": cid,
                "duration": duration,
                "prompt": GENERIC_PROMPT,
                "prompt_is_generic": True,
                "reference": reference,
                "video": f"{cid}.mp4",
                "people": people,
            }
        )
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "name": "interactive_eyes",
        "version": "1.0",
        "description": "InteractiveEyes (AnyTalker, arXiv 2511.23475): 29 two-person dialogue clips, "
        "one audio track per person, speaking segments per person.",
        "source": {
            "repository": REPOSITORY,
            "commit": COMMIT,
            "folder": FOLDER,
            "annotation_file": ANNOTATION_FILE,
            "annotation_sha256": file_sha256.get(ANNOTATION_FILE)
            or hashlib.sha256(ann_path.read_bytes()).hexdigest(),
            "annotation_format": f"seconds.frames timecodes at {TIMECODE_FPS} fps (e.g. 4.19 = 4 s + 19/30 s); "
            "`speaking_raw` holds the released values, `speaking` the converted seconds; "
            "[[0.0, 0.0]] means the person never speaks",
            "prompts": "the release has no per-clip prompts: every clip carries one generic two-person prompt",
            "durations": "each clip's duration is the length of its longest audio track",
        },
        "clips": clips,
    }


def read_sha256_list(path: str | Path) -> dict[str, str]:
    """Parse a ``sha256sum``-style list (``<hex>  <relative path>``)."""
    out = {}
    for line in Path(path).read_text().splitlines():
        if line.strip():
            digest, rel = line.split(maxsplit=1)
            out[rel.strip().lstrip("*")] = digest
    return out


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - maintainer tool
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) not in (2, 3):
        print("usage: python -m interactive_eyes.data.release ROOT SHA256_LIST [OUT.json]", file=sys.stderr)
        return 2
    manifest = build_manifest(argv[0], read_sha256_list(argv[1]))
    text = json.dumps(manifest, indent=1) + "\n"
    if len(argv) == 3:
        Path(argv[2]).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
