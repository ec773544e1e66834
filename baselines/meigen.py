"""What MultiTalk, InfiniteTalk and LongCat-Video-Avatar share: one JSON item file (spec §3.1-3.4).

All three read ``{"prompt", "cond_image" | "cond_video", "cond_audio": {"person1": wav,
"person2": wav}, "audio_type": "para", "bbox": {"person1": [top, left, bottom, right], ...}}``:

* ``cond_audio.person<i>`` is the benchmark's track of the i-th person from the left (§5.1);
* ``audio_type`` ``para``: the tracks play at once and are summed sample by sample, so they must
  have the same length -- exactly what the benchmark's padded tracks are (``add`` would play
  person1's whole track first, then person2's);
* ``bbox`` per person in pixels of the original image, in the order **[top, left, bottom,
  right]** (the code fills rows a..c and columns b..d; LongCat's comments call it [y_min, x_min,
  y_max, x_max]). Boxes are always passed, never left to the code's left/right-halves default,
  so that which region each track drives is decided here and recorded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from interactive_eyes.baselines.foreign import ForeignMethod, face_boxes, upper_body_trbl, write_reference, write_tracks


class MeiGenJsonMethod(ForeignMethod):
    """Shared input translation of the MeiGen-style JSON (MultiTalk, InfiniteTalk, LongCat)."""

    IMAGE_KEY: ClassVar[str] = "cond_image"
    MIN_AUDIO_S: ClassVar[float] = 0.0  # tracks are padded with trailing silence up to this

    def item_json(self, item, job) -> tuple[Path, dict[str, Any]]:
        from PIL import Image

        ref = write_reference(item, job.inputs)
        tracks = write_tracks(item, job.inputs, min_duration=self.MIN_AUDIO_S)
        with Image.open(ref) as im:
            size = im.size
        boxes = face_boxes(item) if item.n_people > 1 else None
        doc: dict[str, Any] = {
            "prompt": item.prompt,
            self.IMAGE_KEY: str(ref),
            "cond_audio": {f"person{i + 1}": str(t) for i, t in enumerate(tracks)},
        }
        if item.n_people > 1:
            doc["audio_type"] = "para"
            doc["bbox"] = {f"person{i + 1}": upper_body_trbl(b, size) for i, b in enumerate(boxes)}
        path = job.inputs / "input.json"
        path.write_text(json.dumps(doc, indent=2))
        return path, doc

    def wan_job_argv(self, item, job, js: Path, seed: int) -> list[str]:
        """The argv tail MultiTalk and InfiniteTalk share (their ``generate_*.py`` take the same
        item, output, seed and sampling flags)."""
        p = self._params
        return ["--input_json", str(js), "--save_file", str(job.out / item.clip_id),
                "--audio_save_dir", str(job.work / "save_audio"),  # unique per job (spec gotcha)
                "--base_seed", str(seed), "--sample_steps", str(p["sample_steps"]),
                "--sample_shift", str(p["sample_shift"]), "--sample_text_guide_scale", str(p["text_guide_scale"]),
                "--sample_audio_guide_scale", str(p["audio_guide_scale"]),
                "--num_persistent_param_in_dit", str(p["num_persistent_param_in_dit"])]
