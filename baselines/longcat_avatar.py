"""``longcat-avatar``: meituan-longcat/LongCat-Video-Avatar, 2 speakers + silent extras (spec §3.4).

MultiTalk's JSON (``person1``/``person2``, ``audio_type`` ``para``, bbox [top, left, bottom,
right] = [y_min, x_min, y_max, x_max]); people whose track is digital silence go to
``bbox.others`` and stay silent, so an item with more than two people runs when at most two
of them speak. Run with torchrun (``<python> -m torch.distributed.run --standalone
--nproc_per_node=1``). The length is set by ``--num_segments``, not by the audio: frames =
93 + 80 (segments - 1), so segments = 1 + ceil(max(0, needed - 93) / 80) and normalisation
trims the rest. Each continuation file holds all frames so far: the output is the highest
``video_continue_<k>.mp4``, else ``ai2v_demo_1.mp4``. Weights folder::

    LongCat-Video/  LongCat-Video-Avatar-1.5/  (LongCat-Video-Avatar/ for model_type avatar-v1.0)
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from interactive_eyes.baselines.base import Capabilities, frame_count
from interactive_eyes.baselines.foreign import Invocation
from interactive_eyes.baselines.meigen import MeiGenJsonMethod

SILENT_PEAK = 1e-4  # a track whose peak stays below this (-80 dBFS) is a silent person
FPS = {"avatar-v1.0": 16, "avatar-v1.5": 25}
WEIGHTS = {"avatar-v1.0": "LongCat-Video-Avatar", "avatar-v1.5": "LongCat-Video-Avatar-1.5"}


def segments_for(frames_needed: int) -> int:
    return 1 + math.ceil(max(0, frames_needed - 93) / 80)


def _speakers(item) -> list[int]:
    import numpy as np

    from interactive_eyes.media.audio import load_audio

    return [i for i, p in enumerate(item.people) if np.abs(load_audio(p.audio)).max() >= SILENT_PEAK]


def _latest(job_dir: Path) -> Path:
    out = job_dir / "out"
    cont = sorted(out.glob("video_continue_*.mp4"), key=lambda p: int(re.findall(r"\d+", p.stem)[-1]))
    if cont:
        return cont[-1]
    first = sorted(out.glob("ai2v_demo_*.mp4"))
    if not first:
        raise FileNotFoundError(f"{out}: no ai2v_demo_*.mp4 or video_continue_*.mp4 written")
    return first[-1]


class LongCatAvatarMethod(MeiGenJsonMethod):
    """Meituan LongCat-Video-Avatar (v1.5 distilled by default; multi-person with silent extras)."""

    name = "longcat-avatar"
    version = "1"
    capabilities = Capabilities(
        max_people=2, silent_extra_people_ok=True, binding="bbox", native_fps=25,
        frame_rule="93 + 80*(num_segments - 1), segments chosen to cover round(fps*T); v1.0 runs at 16 fps",
        resolution="832x480 (480p) or 1280x768 (720p), resize then centre crop (unverified)",
        gpu_memory_gb=80, uses_prompt=True,  # undocumented; examples use 2 GPUs
        repo="https://github.com/meituan-longcat/LongCat-Video", commit="6b3f4b85",
        code_license="MIT", weight_licenses=("MIT (LongCat-Video, LongCat-Video-Avatar)",),
    )
    ENTRY = "run_demo_avatar_multi_audio_to_video.py"
    GEOMETRY = "cover_crop"
    LOAD_S = 900.0
    DEFAULT_PARAMS = {**MeiGenJsonMethod.DEFAULT_PARAMS, "model_type": "avatar-v1.5", "resolution": "480p",
                      "num_inference_steps": 8, "text_guidance_scale": 4.0, "audio_guidance_scale": 4.0}

    @property
    def WEIGHT_FILES(self):  # noqa: N802 (depends on model_type)
        return ("LongCat-Video", WEIGHTS[self._params["model_type"]])

    def __init__(self, **params):
        super().__init__(**params)
        if self._params["model_type"] not in FPS:
            raise ValueError(f"method 'longcat-avatar': model_type must be one of {sorted(FPS)}")

    def fps(self) -> float:
        return float(FPS[self._params["model_type"]])

    def check(self, item):
        reason = super().check(item)
        if reason is None and item.n_people > 2 and len(_speakers(item)) > 2:
            reason = f"{len(_speakers(item))} people speak, longcat-avatar drives at most 2 (extras must be silent)"
        return reason

    def prepare_job(self, item, job, seed):
        import json

        js, doc = self.item_json(item, job)
        if item.n_people > 2:  # the speakers keep person1/person2 (left to right), the others go silent
            speak = _speakers(item)
            boxes = list(doc["bbox"].values())
            audio = list(doc["cond_audio"].values())
            doc["cond_audio"] = {f"person{k + 1}": audio[i] for k, i in enumerate(speak)}
            doc["bbox"] = {f"person{k + 1}": boxes[i] for k, i in enumerate(speak)}
            doc["bbox"]["others"] = [v for i in range(item.n_people) if i not in speak for v in boxes[i]]
            js.write_text(json.dumps(doc, indent=2))
        p = self._params
        segments = segments_for(frame_count(item.duration, self.fps()))
        script = self.ENTRY if item.n_people > 1 else "run_demo_avatar_single_audio_to_video.py"
        argv = [self.python(), "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1",
                str(self.path("repo") / script), "--input_json", str(js), "--output_dir", str(job.out),
                "--resolution", p["resolution"], "--num_segments", str(segments), "--context_parallel_size", "1",
                "--checkpoint_dir", self.weight(WEIGHTS[p["model_type"]]), "--model_type", p["model_type"],
                "--num_inference_steps", str(p["num_inference_steps"]),
                "--text_guidance_scale", str(p["text_guidance_scale"]),
                "--audio_guidance_scale", str(p["audio_guidance_scale"])]
        if p["model_type"] == "avatar-v1.5":
            argv.append("--use_distill")  # required for v1.5 (spec §3.4)
        return Invocation(argv=argv, output="", collect=_latest, facts={"input_json": doc, "num_segments": segments})
