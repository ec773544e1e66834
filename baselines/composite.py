"""``--composite``: a single-person method run per person on crops, pasted back (spec §5.6).

An optional variant, **labelled as such** (method name ``<name>+composite``, ``mode:
"composite"`` in run.json), never the default: single-person methods are otherwise evaluated on
single-person items only and N > 1 items are unsupported.

For each person (left to right):

1. a crop around their face box, ``CROP_SCALE`` x the face size, of the method's preferred
   aspect (``COMPOSITE_ASPECT`` of the adapter: square for most, 3:2 for Hallo3), moved inside
   the image if it sticks out;
2. the method runs on that crop with **that person's own track** (a one-person item), through
   its normal pipeline (its own job folder ``jobs/<clip>/p<i>/``, normalised to its native fps
   and frame count);
3. each result is resized to its crop and pasted into the still reference with a feathered mask
   (linear ramp over ``FEATHER`` of the crop size at each border).

``geometry.json`` records every crop and the per-person maps. Known artifacts: seams, background
mismatch, overlapping crops (later people are pasted over earlier ones; the overlap is recorded),
and listener behaviour is whatever the model does with a silent track.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from interactive_eyes.baselines.base import Item, Method

CROP_SCALE = 2.5  # crop side / face side: head, hair and some shoulders, as single-person methods expect
FEATHER = 0.08


def crop_box(face, size, aspect: float, scale: float = CROP_SCALE) -> tuple[int, int, int, int]:
    """Integer (x1, y1, x2, y2) of width/height ``aspect`` around ``face``, inside the image, even sizes."""
    x1, y1, x2, y2 = face
    w, h = size
    side = max(x2 - x1, y2 - y1) * scale
    cw, ch = (side * aspect, side) if aspect >= 1 else (side, side / aspect)
    f = min(1.0, w / cw, h / ch)  # shrink (keeping the aspect) to fit the image
    cw, ch = cw * f, ch * f
    cw, ch = int(cw) // 2 * 2, int(ch) // 2 * 2
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    bx = int(round(min(max(0.0, cx - cw / 2), w - cw)))
    by = int(round(min(max(0.0, cy - ch / 2), h - ch)))
    return bx, by, bx + cw, by + ch


def feather_mask(h: int, w: int, feather: float = FEATHER):
    import numpy as np

    def ramp(n):
        r = max(1.0, feather * n)
        i = np.arange(n) + 0.5
        return np.clip(np.minimum(i, n - i) / r, 0.0, 1.0)

    return (ramp(h)[:, None] * ramp(w)[None, :])[..., None].astype(np.float32)


class CompositeMethod(Method):
    """A single-person method run once per person on a crop, results pasted into the reference."""

    mode = "composite"

    def __init__(self, inner: Method):
        if inner.capabilities.max_people != 1:
            raise ValueError(f"--composite is for single-person methods; {inner.name} handles "
                             f"{inner.capabilities.max_people or 'any number of'} people itself")
        self.inner = inner
        self.name = f"{inner.name}+composite"
        self.version = inner.version
        self.DEFAULT_PARAMS = inner.DEFAULT_PARAMS
        self._params = inner._params
        self.capabilities = replace(inner.capabilities, max_people=None, binding="face_crops",
                                    resolution="the reference frame; per-person crops pasted back (composite)")

    def missing(self) -> list[str]:
        return self.inner.missing() if hasattr(self.inner, "missing") else []

    def fps(self) -> float:
        return self.inner.fps() if hasattr(self.inner, "fps") else float(self.inner.capabilities.native_fps)

    def check(self, item: Item) -> str | None:
        for p in item.people:
            reason = self.inner.check(replace(item, people=(p,)))
            if reason:
                return f"{p.role}: {reason}"
        return None

    def generate(self, item: Item, out_path: Path, *, seed: int) -> dict[str, Any]:
        import numpy as np
        from PIL import Image

        from interactive_eyes.baselines.base import load_reference_frame, load_tracks, mix_tracks
        from interactive_eyes.baselines.foreign import face_boxes
        from interactive_eyes.media.video import iter_frames, write_video

        out_path = Path(out_path)
        job = out_path.parent / "jobs" / item.clip_id
        ref = load_reference_frame(item.reference_frame)
        size = (ref.shape[1], ref.shape[0])
        aspect = float(getattr(self.inner, "COMPOSITE_ASPECT", 1.0))
        people, videos = [], []
        for i, (person, face) in enumerate(zip(item.people, face_boxes(item))):
            box = crop_box(face, size, aspect)
            sub_dir = job / f"p{i}"
            sub_dir.mkdir(parents=True, exist_ok=True)
            crop_png = sub_dir / "crop.png"
            Image.fromarray(ref[box[1]:box[3], box[0]:box[2]]).save(crop_png)
            sub = Item(clip_id=f"{item.clip_id}_p{i}", duration=item.duration, people=(replace(person, face_box=None),),
                       prompt=item.prompt, reference_frame=crop_png)
            video = sub_dir / f"{sub.clip_id}.mp4"
            info = self.inner.generate(sub, video, seed=seed, job_dir=sub_dir / "job")
            people.append({"role": person.role, "face_box": list(face), "crop": list(box), "inner": info})
            videos.append(video)
        fps = self.fps()
        tracks, rate = load_tracks(item)
        mix, clipped = mix_tracks(tracks)
        masks = [feather_mask(p["crop"][3] - p["crop"][1], p["crop"][2] - p["crop"][0]) for p in people]
        base = ref.astype(np.float32)

        def frames():
            import cv2

            for parts in zip(*(iter_frames(v) for v in videos)):
                canvas = base.copy()
                for f, p, m in zip(parts, people, masks):
                    x1, y1, x2, y2 = p["crop"]
                    patch = cv2.resize(f.rgb, (x2 - x1, y2 - y1), interpolation=cv2.INTER_AREA).astype(np.float32)
                    canvas[y1:y2, x1:x2] = m * patch + (1 - m) * canvas[y1:y2, x1:x2]
                yield np.clip(canvas + 0.5, 0, 255).astype(np.uint8)

        write_video(out_path, frames(), fps, audio=mix, audio_rate=rate, crf=int(self._params.get("crf", 18)))
        overlap = _overlap([p["crop"] for p in people])
        geo = {"policy": "composite", "sx": 1.0, "sy": 1.0, "tx": 0.0, "ty": 0.0, "ref_size": list(size),
               "out_size": list(size), "crops": [{k: p[k] for k in ("role", "face_box", "crop")} for p in people],
               "overlap_px": overlap}
        (job / "geometry.json").write_text(json.dumps(geo, indent=2) + "\n")
        from interactive_eyes.baselines.base import frame_count

        return {"mode": "composite", "base_method": self.inner.name, "frames": frame_count(item.duration, fps), "fps": fps,
                "width": size[0], "height": size[1], "audio_rate": rate, "mix_clipped_samples": clipped,
                "geometry": geo, "people": people, "job_dir": str(job)}


def _overlap(boxes) -> int:
    total = 0
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            a, b = boxes[i], boxes[j]
            w = min(a[2], b[2]) - max(a[0], b[0])
            h = min(a[3], b[3]) - max(a[1], b[1])
            total += max(0, w) * max(0, h)
    return int(total)
