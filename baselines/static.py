"""``static``: the reference frame held still for the whole clip, with the benchmark mix muxed in.

The floor for motion- and sync-based scores: nobody moves, no mouth follows any audio. Any
score a real method gets for Interactivity (listener motion) or lip sync should be compared
against what this method gets on the same clips, because detector jitter and compression noise
alone give a static video a non-zero motion score (spec/metrics.md, Interactivity, known issue 9).

Output: ``frame_count(T, 25)`` copies of the reference frame (cut to even size, §5.4),
H.264 yuv420p crf 18, 25 fps (the rate SyncNet-style scorers assume, spec/baselines.md §5.4),
and the mix of the people's tracks at the tracks' own rate as AAC.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from interactive_eyes.baselines.base import Capabilities, Item, Method

FPS = 25  # spec/baselines.md §5.4: normalised outputs are 25 fps


class StaticMethod(Method):
    """The reference frame held for the clip's duration, the benchmark mix muxed in (the floor)."""

    name = "static"
    version = "1"
    capabilities = Capabilities(
        max_people=None,
        binding="none",
        native_fps=FPS,
        frame_rule="round(25 * T) frames, T = the longest track",
        resolution="the reference frame, cut to even width and height",
        needs_reference_frame=True,
        muxes_audio=True,
        uses_prompt=False,
        deterministic=True,
        code_license="Apache-2.0",
    )
    # crf 18: the x264 quality spec/baselines.md §5.4 step 5 asks for (about 17-18)
    DEFAULT_PARAMS = {"crf": 18}

    def generate(self, item: Item, out_path: Path, *, seed: int) -> dict[str, Any]:
        # seed: unused, the output has no randomness (recorded anyway by the run driver)
        from interactive_eyes.baselines.base import frame_count, load_reference_frame, load_tracks, mix_tracks
        from interactive_eyes.media.video import write_video

        t0 = time.perf_counter()
        ref = load_reference_frame(item.reference_frame)
        tracks, rate = load_tracks(item)
        mix, clipped = mix_tracks(tracks)
        n = frame_count(item.duration, FPS)
        t1 = time.perf_counter()
        write_video(out_path, (ref for _ in range(n)), FPS, audio=mix, audio_rate=rate, crf=int(self._params["crf"]))
        t2 = time.perf_counter()
        h, w = ref.shape[:2]
        return {
            "frames": n,
            "fps": FPS,
            "width": w,
            "height": h,
            "duration": n / FPS,
            "audio_rate": rate,
            "audio_channels": int(mix.shape[1]),
            "mix_clipped_samples": clipped,
            "geometry": {"sx": 1.0, "sy": 1.0, "tx": 0.0, "ty": 0.0, "crop": [0, 0, w, h]},
            "seconds_prepare": round(t1 - t0, 3),
            "seconds_encode": round(t2 - t1, 3),
        }
