"""A small valid manifest for the validation and fuzz tests (imported by name: tests/data is on sys.path)."""

from __future__ import annotations

H = "ab" * 32  # a well-formed sha256


def base() -> dict:
    """Two clips: a two-person clip of 8.6 s with every optional field, a one-person clip of 5 s."""
    return {
        "schema": "ie-bench/manifest", "schema_version": 1, "name": "tiny", "version": "1",
        "source": {"repository": "o/r", "annotation_file": "ann.json"},
        "clips": [
            {"id": "a", "duration": 8.6, "video": "a.mp4", "prompt": "two people", "prompt_is_generic": True,
             "reference": {"youtube_id": "yt", "time": 1.0},
             "people": [{"role": "left", "audio": "audio_left/a_left.wav", "speaking": [[1.0, 4.0]],
                         "pcm_sha256": H, "audio_sha256": H, "sample_rate": 48000, "channels": 2,
                         "n_samples": 412800, "speaking_raw": [[1.0, 4.0]]},
                        {"role": "right", "audio": "audio_right/a_right.wav", "speaking": [[4.0, 8.6]]}]},
            {"id": "b", "duration": 5.0, "video": "b.mp4",
             "people": [{"role": "p0", "audio": "b.wav", "speaking": []}]},
        ],
    }
