"""``omniavatar``: Omni-Avatar/OmniAvatar, one person (spec §4 "OmniAvatar").

``<python> -m torch.distributed.run --standalone --nproc_per_node=1 scripts/inference.py
--config configs/inference.yaml --input_file list.txt --hp seed=S,silence_duration_s=0.32,...``
with a ``prompt@@image@@audio`` list file. **Time offset**: the code prepends
``silence_duration_s`` of silence and frame 0 is the reference image, so with 0.32 s (a
multiple of 1/25, unlike the default 0.3) the first 1 + 8 frames are dropped and frame 0 is
audio t = 0. Output ``demo_out/<exp>/res_<list>_seed.../result_<idx>_000_wav.mp4`` relative
to the working directory and timestamped: found by glob in the job's own folder. The weights
(``pretrained_models/``: Wan2.1-T2V-14B or -1.3B, OmniAvatar-14B or -1.3B, wav2vec2-base-960h)
are read relative to the checkout, as configs/inference.yaml names them.
"""

from __future__ import annotations

from interactive_eyes.baselines.base import Capabilities
from interactive_eyes.baselines.foreign import ForeignMethod, Invocation, single_person_inputs, write_prompt_list

SILENCE_S = 0.32  # 8 frames at 25 fps exactly
LEAD_IN = 1 + 8  # the reference frame, then the silent frames


class OmniAvatarMethod(ForeignMethod):
    """OmniAvatar (Wan2.1-T2V-14B + audio LoRA, single person)."""

    name = "omniavatar"
    version = "1"
    capabilities = Capabilities(
        max_people=1, binding="none", native_fps=25,
        frame_rule="1 reference frame + 0.32 s silence (8 frames, dropped) + the audio",
        resolution="480p buckets 720x400 / 720x720 / 400x720, centre crop", lead_in_offset=LEAD_IN / 25,
        gpu_memory_gb=36, uses_prompt=True, repo="https://github.com/Omni-Avatar/OmniAvatar", commit="1536bf31",
        code_license="Apache-2.0", weight_licenses=("Apache-2.0 (Wan2.1-T2V)", "Apache-2.0 (OmniAvatar)"),
    )
    CONFIG_KEYS = ("repo", "python")
    ENTRY = "scripts/inference.py"
    REPO_FILES = ("pretrained_models",)
    GEOMETRY = "cover_crop"
    COMPOSITE_ASPECT = 1.0
    DEFAULT_PARAMS = {**ForeignMethod.DEFAULT_PARAMS, "num_steps": 50, "guidance_scale": 4.5, "audio_scale": None}

    def prepare_job(self, item, job, seed):
        p = self._params
        ref, wav = single_person_inputs(item, job.inputs)
        lst = write_prompt_list(job.inputs / "list.txt", [(item.prompt, ref, wav)])
        hp = {"seed": seed, "silence_duration_s": SILENCE_S, "num_steps": p["num_steps"], "guidance_scale": p["guidance_scale"]}
        if p["audio_scale"] is not None:
            hp["audio_scale"] = p["audio_scale"]
        argv = [self.python(), "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1", self.entry(),
                "--config", "configs/inference.yaml", "--input_file", str(lst),
                "--hp", ",".join(f"{k}={v}" for k, v in hp.items())]
        return Invocation(argv=argv, output="work/demo_out/**/result_*_wav.mp4", lead_in_frames=LEAD_IN)
