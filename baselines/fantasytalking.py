"""``fantasytalking``: Fantasy-AMAP/fantasy-talking, one person (spec §4 "FantasyTalking").

``<python> infer.py --image_path --audio_path --prompt --output_dir --image_size 512
--max_num_frames N --fps 23 ...`` (30 steps, hard-coded). The default ``--max_num_frames 81``
cuts the output at about 3.5 s, so N is raised to the smallest 4k+5 covering round(23 T)
(memory grows with it). Output ``<output_dir>/<img>_<audio>_<YYYYmmdd_HHMMSS>.mp4``: one folder
per job, the single mp4 in it. Weights folder::

    Wan2.1-I2V-14B-720P/  wav2vec2-base-960h/  fantasytalking_model.ckpt
"""

from __future__ import annotations

from interactive_eyes.baselines.base import Capabilities, frame_count
from interactive_eyes.baselines.foreign import ForeignMethod, Invocation, frames_4n1, single_person_inputs

FPS = 23


class FantasyTalkingMethod(ForeignMethod):
    """FantasyTalking (Wan2.1-I2V-14B-720P + audio adapter, single person)."""

    name = "fantasytalking"
    version = "1"
    capabilities = Capabilities(
        max_people=1, binding="none", native_fps=FPS,
        frame_rule="min(4k+5 from 23*T, --max_num_frames), max_num_frames raised to cover the clip",
        resolution="longest edge --image_size (512), aspect kept", gpu_memory_gb=40, uses_prompt=True,
        repo="https://github.com/Fantasy-AMAP/fantasy-talking", commit="8c2d0c9c",
        code_license="Apache-2.0", weight_licenses=("Apache-2.0 (Wan2.1)", "Apache-2.0 (FantasyTalking)"),
    )
    ENTRY = "infer.py"
    WEIGHT_FILES = ("Wan2.1-I2V-14B-720P", "wav2vec2-base-960h", "fantasytalking_model.ckpt")
    GEOMETRY = "resize"
    COMPOSITE_ASPECT = 1.0
    DEFAULT_PARAMS = {**ForeignMethod.DEFAULT_PARAMS, "image_size": 512, "audio_scale": 1.0, "prompt_cfg_scale": 5.0,
                      "audio_cfg_scale": 5.0, "num_persistent_param_in_dit": 7_000_000_000}

    def prepare_job(self, item, job, seed):
        p = self._params
        ref, wav = single_person_inputs(item, job.inputs)
        n = frames_4n1(frame_count(item.duration, FPS), extra=4)
        argv = [self.python(), self.entry(), "--image_path", str(ref), "--audio_path", str(wav), "--prompt", item.prompt,
                "--output_dir", str(job.out), "--image_size", str(p["image_size"]), "--max_num_frames", str(n),
                "--fps", str(FPS), "--audio_scale", str(p["audio_scale"]), "--prompt_cfg_scale", str(p["prompt_cfg_scale"]),
                "--audio_cfg_scale", str(p["audio_cfg_scale"]), "--seed", str(seed),
                "--num_persistent_param_in_dit", str(p["num_persistent_param_in_dit"]),
                "--wan_model_dir", self.weight("Wan2.1-I2V-14B-720P"),
                "--fantasytalking_model_path", self.weight("fantasytalking_model.ckpt"),
                "--wav2vec_model_dir", self.weight("wav2vec2-base-960h")]
        return Invocation(argv=argv, output="out/*.mp4", facts={"max_num_frames": n})
