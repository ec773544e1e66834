"""``infinitetalk``: MeiGen-AI/InfiniteTalk, MultiTalk's JSON with ``cond_video`` (spec §3.2).

``<python> generate_infinitetalk.py --mode streaming --motion_frame 9 --max_frame_num 1000``;
two people need the ``multi/`` weights, one person the ``single/`` ones. Weights folder::

    Wan2.1-I2V-14B-480P/  chinese-wav2vec2-base/
    InfiniteTalk/single/infinitetalk.safetensors  InfiniteTalk/multi/infinitetalk.safetensors

Output ``<save_file>.mp4`` at 25 fps, trimmed upstream to floor(25 d) frames. The same
> 81-frame audio requirement as MultiTalk: tracks padded with silence to 3.32 s.
"""

from __future__ import annotations

from interactive_eyes.baselines.base import Capabilities
from interactive_eyes.baselines.foreign import Invocation
from interactive_eyes.baselines.meigen import MeiGenJsonMethod
from interactive_eyes.baselines.multitalk import WAN_BASE, WAV2VEC


class InfiniteTalkMethod(MeiGenJsonMethod):
    """MeiGen-AI InfiniteTalk (sparse-frame dubbing on Wan2.1-I2V-14B; bbox binding as MultiTalk)."""

    name = "infinitetalk"
    version = "1"
    capabilities = Capabilities(
        max_people=2, binding="bbox", native_fps=25,
        frame_rule="streaming: floor(25*d) frames (trimmed upstream), --max_frame_num 1000",
        resolution="aspect-ratio bucket (infinitetalk-480), resize then centre crop",
        max_duration=40.0, gpu_memory_gb=24, uses_prompt=True,
        repo="https://github.com/MeiGen-AI/InfiniteTalk", commit="0107cd96",
        code_license="Apache-2.0", weight_licenses=("Apache-2.0 (Wan2.1)", "Apache-2.0 (InfiniteTalk)"),
    )
    ENTRY = "generate_infinitetalk.py"
    WEIGHT_FILES = (WAN_BASE, WAV2VEC, "InfiniteTalk/single/infinitetalk.safetensors",
                    "InfiniteTalk/multi/infinitetalk.safetensors")
    GEOMETRY = "cover_crop"
    IMAGE_KEY = "cond_video"
    MIN_AUDIO_S = 82 / 25 + 0.08
    DEFAULT_PARAMS = {**MeiGenJsonMethod.DEFAULT_PARAMS, "size": "infinitetalk-480", "sample_steps": 40,
                      "sample_shift": 7, "text_guide_scale": 5.0, "audio_guide_scale": 4.0, "motion_frame": 9,
                      "num_persistent_param_in_dit": 0}

    def prepare_job(self, item, job, seed):
        js, doc = self.item_json(item, job)
        p = self._params
        which = "multi" if item.n_people > 1 else "single"
        argv = [self.python(), self.entry(), "--task", "infinitetalk-14B", "--size", p["size"], "--mode", "streaming",
                "--motion_frame", str(p["motion_frame"]), "--max_frame_num", "1000",
                "--ckpt_dir", self.weight(WAN_BASE), "--wav2vec_dir", self.weight(WAV2VEC),
                "--infinitetalk_dir", self.weight(f"InfiniteTalk/{which}/infinitetalk.safetensors")] + self.wan_job_argv(item, job, js, seed)
        return Invocation(argv=argv, output=f"out/{item.clip_id}.mp4", facts={"input_json": doc})
