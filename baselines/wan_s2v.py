"""``wan-s2v``: Wan-Video/Wan2.2 speech-to-video (``--task s2v-14B``), one person (spec §4 "Wan2.2-S2V").

``<python> generate.py --task s2v-14B --size 1024*704 --ckpt_dir <Wan2.2-S2V-14B> --offload_model
True --convert_model_dtype --prompt --image --audio --save_file OUT --base_seed S`` at 16 fps.
Whole 80-frame clips cover the audio and ``-shortest`` cuts them at mux time (the audio is
muxed into ``--save_file`` in place). The size is the area of ``--size`` with the image's
aspect ratio: a plain resize. Weights folder: ``Wan2.2-S2V-14B/`` (includes wav2vec2-large-xlsr-53-english).
"""

from __future__ import annotations

from interactive_eyes.baselines.base import Capabilities
from interactive_eyes.baselines.foreign import ForeignMethod, Invocation, single_person_inputs


class WanS2VMethod(ForeignMethod):
    """Wan2.2-S2V-14B (speech-to-video, single person)."""

    name = "wan-s2v"
    version = "1"
    capabilities = Capabilities(
        max_people=1, binding="none", native_fps=16, frame_rule="whole 80-frame clips covering the audio, cut by -shortest",
        resolution="area of --size (1024*704), aspect ratio of the image", gpu_memory_gb=80, uses_prompt=True,
        repo="https://github.com/Wan-Video/Wan2.2", commit="42bf4cfa",
        code_license="Apache-2.0", weight_licenses=("Apache-2.0 (Wan2.2-S2V-14B)",),
    )
    ENTRY = "generate.py"
    WEIGHT_FILES = ("Wan2.2-S2V-14B",)
    GEOMETRY = "resize"
    COMPOSITE_ASPECT = 1.0
    DEFAULT_PARAMS = {**ForeignMethod.DEFAULT_PARAMS, "size": "1024*704", "sample_steps": 40, "sample_guide_scale": 4.5,
                      "infer_frames": 80}

    def prepare_job(self, item, job, seed):
        p = self._params
        ref, wav = single_person_inputs(item, job.inputs)
        out = job.out / f"{item.clip_id}.mp4"
        argv = [self.python(), self.entry(), "--task", "s2v-14B", "--size", p["size"], "--ckpt_dir", self.weight("Wan2.2-S2V-14B"),
                "--offload_model", "True", "--convert_model_dtype", "--prompt", item.prompt, "--image", str(ref),
                "--audio", str(wav), "--infer_frames", str(p["infer_frames"]), "--save_file", str(out),
                "--base_seed", str(seed), "--sample_steps", str(p["sample_steps"]),
                "--sample_guide_scale", str(p["sample_guide_scale"])]
        return Invocation(argv=argv, output=f"out/{item.clip_id}.mp4")
