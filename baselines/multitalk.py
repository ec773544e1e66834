"""``multitalk``: MeiGen-AI/MultiTalk, two people bound by bbox + L-RoPE (spec/baselines.md §3.1).

Run as ``<python> generate_multitalk.py --mode streaming ...`` (the default ``clip`` mode stops
at 81 frames). Weights folder layout (``weights =``)::

    Wan2.1-I2V-14B-480P/          the Wan base, never modified
    chinese-wav2vec2-base/        with model.safetensors from revision refs/pr/1
    MeiGen-MultiTalk/             multitalk.safetensors + diffusion_pytorch_model.safetensors.index.json

The README's "replace the base folder's index JSON and link multitalk.safetensors into it" is
done in a per-job folder of symlinks (``in/ckpt``), so the shared base stays untouched.
Audio shorter than 81 frames + 2 (3.32 s) fails an assertion upstream, so tracks are padded
with trailing silence to 3.32 s and the output trimmed back by normalisation. Streaming gives
about floor(25 d) - 3 frames; normalisation pads the last ones (recorded as ``padded_frames``).
"""

from __future__ import annotations

from interactive_eyes.baselines.base import Capabilities
from interactive_eyes.baselines.foreign import Invocation
from interactive_eyes.baselines.meigen import MeiGenJsonMethod

WAN_BASE = "Wan2.1-I2V-14B-480P"
WAV2VEC = "chinese-wav2vec2-base"
INDEX = "diffusion_pytorch_model.safetensors.index.json"


class MultiTalkMethod(MeiGenJsonMethod):
    """MeiGen-AI MultiTalk (Wan2.1-I2V-14B + audio cross-attention, L-RoPE speaker binding)."""

    name = "multitalk"
    version = "1"
    capabilities = Capabilities(
        max_people=2, binding="bbox", native_fps=25,
        frame_rule="streaming: about floor(25*d) - 3 (81-frame chunks, 25 motion frames), cap 1000",
        resolution="aspect-ratio bucket (~640^2 at 480p, 16:9 -> 896x448), resize then centre crop",
        max_duration=40.0,  # --max_frame_num 1000 at 25 fps
        gpu_memory_gb=24, uses_prompt=True,
        repo="https://github.com/MeiGen-AI/MultiTalk", commit="c1ad8400",
        code_license="Apache-2.0", weight_licenses=("Apache-2.0 (Wan2.1)", "Apache-2.0 (MeiGen-MultiTalk)"),
    )
    ENTRY = "generate_multitalk.py"
    WEIGHT_FILES = (WAN_BASE, WAV2VEC, "MeiGen-MultiTalk/multitalk.safetensors", f"MeiGen-MultiTalk/{INDEX}")
    GEOMETRY = "cover_crop"
    MIN_AUDIO_S = 82 / 25 + 0.08  # > 81 frames of features, with a margin of 2 frames
    DEFAULT_PARAMS = {**MeiGenJsonMethod.DEFAULT_PARAMS, "size": "multitalk-480", "sample_steps": 40,
                      "sample_shift": 7, "text_guide_scale": 5.0, "audio_guide_scale": 4.0,
                      "num_persistent_param_in_dit": 0}

    def ckpt_dir(self, job):
        """The Wan base as symlinks, with MultiTalk's index JSON and weights linked in (README step)."""
        base, mt = self.path("weights") / WAN_BASE, self.path("weights") / "MeiGen-MultiTalk"
        ckpt = job.inputs / "ckpt"
        ckpt.mkdir(exist_ok=True)
        for e in base.iterdir():
            if e.name != INDEX and not (ckpt / e.name).exists():
                (ckpt / e.name).symlink_to(e)
        for name in (INDEX, "multitalk.safetensors"):
            if not (ckpt / name).exists():
                (ckpt / name).symlink_to(mt / name)
        return ckpt

    def prepare_job(self, item, job, seed):
        js, doc = self.item_json(item, job)
        p = self._params
        argv = [self.python(), self.entry(), "--task", "multitalk-14B", "--size", p["size"], "--mode", "streaming",
                "--frame_num", "81", "--motion_frame", "25",
                "--ckpt_dir", str(self.ckpt_dir(job)), "--wav2vec_dir", self.weight(WAV2VEC)] + self.wan_job_argv(item, job, js, seed)
        return Invocation(argv=argv, output=f"out/{item.clip_id}.mp4", facts={"input_json": doc})
