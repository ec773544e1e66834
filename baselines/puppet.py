"""``puppet``: a non-learned animation of the reference frame, the reference point above ``static``.

Every person found in the reference frame is animated from **their own audio track only** (the
annotated speaking segments are not used, so the puppet gets exactly what a real method gets):

* **Listening head motion.** While a person's track is quiet they sway and nod: the head region
  (a feathered ellipse around the FaceMesh face oval) is rotated about a pivot under the chin and
  shifted. Roll, sideways and vertical drift are each a sum of three sinusoids (0.15-0.6 Hz,
  random phases); nods are 0.6 s down-and-up bumps at random times (about one per 4 s). The
  amplitude is scaled by the listening weight, which fades over ~0.4 s at turn boundaries.
* **Blinks**, speaking or listening, at random times (``blinks_per_minute``; people blink about
  15-20 times a minute at rest): the eye region is squashed vertically, eyelid skin above and
  below being pulled over the eye (close 70 ms, hold 50 ms, open 150 ms).
* **Mouth opening** follows the person's loudness: the RMS level of their track in a 40 ms window
  at each frame maps linearly from -50 dBFS (closed) to -20 dBFS (fully open). The lower lip and
  jaw move down and the upper lip up, separating the lips by up to ``mouth_open`` x mouth width;
  the lower face stretches/compresses to follow, and the gap between the lips is darkened like an open mouth.

All randomness comes from ``numpy.random.default_rng`` seeded by (seed, person index), so the same
seed gives the same frames. People are found with the current MediaPipe face models (BlazeFace
short range in square windows of the frame, then the 478-point mesh model, through LiteRT; version
1 used the legacy mediapipe 0.10.21 graphs), the N largest faces sorted left to right by box
centre (the AnyTalker binding rule, spec/baselines.md §2.4): track i drives the i-th face from
the left. Faces are assumed upright (no roll compensation).

Faces are found in ``puppet_faces.py``, signals and rendering are in ``puppet_motion.py``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from interactive_eyes.baselines.base import Capabilities, Item, Method
from interactive_eyes.baselines.puppet_faces import FaceGeometry, locate_faces
from interactive_eyes.baselines.puppet_motion import PersonRenderer, frame_levels_db, person_signals

FPS = 25  # spec/baselines.md §5.4: normalised outputs are 25 fps
# --------------------------------------------------------------------------- the method


class PuppetMethod(Method):
    """Non-learned animation: listening sway/nods and blinks, mouth opening from each person's own loudness."""

    name = "puppet"
    version = "2"  # 2: faces from face_landmarker.task's models through LiteRT (numpy 2), not the legacy graphs
    capabilities = Capabilities(
        max_people=None,
        binding="left_right_detection",
        native_fps=FPS,
        frame_rule="round(25 * T) frames, T = the longest track",
        resolution="the reference frame, cut to even width and height",
        needs_reference_frame=True,
        muxes_audio=True,
        uses_prompt=False,
        deterministic=True,
        code_license="Apache-2.0",
    )
    DEFAULT_PARAMS = {
        "crf": 18,  # spec/baselines.md §5.4 step 5
        "head_motion": 1.0,  # scales roll, sway, drift and nods
        "blinks_per_minute": 15.0,
        "mouth_open": 0.22,  # lip separation at full loudness, as a fraction of the mouth width
    }

    def __init__(self, **params: Any):
        super().__init__(**params)
        self._faces_cache: dict[tuple, list[FaceGeometry]] = {}

    def faces(self, item: Item) -> list[FaceGeometry]:
        """The item's faces, left to right (cached per reference file and boxes)."""
        p = Path(item.reference_frame)
        st = p.stat()
        boxes = tuple(pp.face_box for pp in item.people) if all(pp.face_box for pp in item.people) else None
        key = (str(p.resolve()), st.st_size, st.st_mtime_ns, item.n_people, boxes)
        if key not in self._faces_cache:
            from interactive_eyes.baselines.base import load_reference_frame

            self._faces_cache.clear()
            self._faces_cache[key] = locate_faces(load_reference_frame(p), item.n_people, boxes)
        return self._faces_cache[key]

    def check(self, item: Item) -> str | None:
        reason = super().check(item)
        if reason:
            return reason
        found = len(self.faces(item))
        if found < item.n_people:
            return f"{item.reference_frame}: found {found} face(s) with landmarks, the clip has {item.n_people} people"
        return None

    def generate(self, item: Item, out_path: Path, *, seed: int) -> dict[str, Any]:
        import numpy as np

        from interactive_eyes.baselines.base import frame_count, load_reference_frame, load_tracks, mix_tracks
        from interactive_eyes.media.video import write_video

        t0 = time.perf_counter()
        ref = load_reference_frame(item.reference_frame)
        faces = self.faces(item)
        if len(faces) < item.n_people:
            raise RuntimeError(self.check(item) or "faces not found")
        tracks, rate = load_tracks(item)
        mix, clipped = mix_tracks(tracks)
        n = frame_count(item.duration, FPS)
        p = self._params
        signals, renderers = [], []
        for k, geom in enumerate(faces):
            rng = np.random.default_rng([int(seed) % (1 << 63), k])
            levels = frame_levels_db(tracks[k].mean(axis=1), rate, n, FPS)
            signals.append(person_signals(levels, FPS, rng, head_motion=float(p["head_motion"]),
                                          blinks_per_minute=float(p["blinks_per_minute"])))
            renderers.append(PersonRenderer(ref, geom, float(p["mouth_open"])))
        t1 = time.perf_counter()

        def frames():
            for j in range(n):
                frame = ref.copy()
                for s, r in zip(signals, renderers):
                    r.apply(frame, s["blink"][j], s["mouth"][j], s["roll"][j], s["dx"][j], s["dy"][j])
                yield frame

        write_video(out_path, frames(), FPS, audio=mix, audio_rate=rate, crf=int(p["crf"]))
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
            "people": [
                {"role": pp.role, "face": g.to_dict(), "blinks": s["n_blinks"], "nods": s["n_nods"],
                 "listening_fraction": round(float(np.mean(s["listen"] > 0.5)), 3),
                 "mean_mouth_opening": round(float(np.mean(s["mouth"])), 3)}
                for pp, g, s in zip(item.people, faces, signals)
            ],
            "seconds_prepare": round(t1 - t0, 3),
            "seconds_render_encode": round(t2 - t1, 3),
        }
