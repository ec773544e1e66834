"""``sonic``: jixiaozhong/Sonic, one person (spec §4 "Sonic").

``<python> demo.py <image> <audio> <out.mp4> --dynamic_scale 1.0``. 12.5 fps doubled to 25 by
RIFE; short side 512 in multiples of 64 (a plain resize). ``--seed`` is parsed but never used
upstream (the config fixes 72589), so the benchmark seed cannot reach it: recorded as such.
``--crop`` is not used (it writes ``<image>.crop.png`` next to the input). The process uses
GPU 0, so the GPU is chosen with ``CUDA_VISIBLE_DEVICES`` (``gpu``). Weights are read from the
checkout's ``checkpoints/`` (Sonic, stable-video-diffusion-img2vid-xt, whisper-tiny, RIFE, yoloface).
"""

from __future__ import annotations

from interactive_eyes.baselines.base import Capabilities
from interactive_eyes.baselines.foreign import ForeignMethod, Invocation, single_person_inputs


class SonicMethod(ForeignMethod):
    """Sonic (SVD-based, single person; non-commercial license)."""

    name = "sonic"
    version = "1"
    capabilities = Capabilities(
        max_people=1, binding="none", native_fps=25, frame_rule="audio length (12.5 fps x2 by RIFE)",
        resolution="short side 512, multiples of 64, plain resize", gpu_memory_gb=16, deterministic=True,
        repo="https://github.com/jixiaozhong/Sonic", commit="51a74aec",
        code_license="CC BY-NC-SA 4.0", weight_licenses=("SVD community license (stable-video-diffusion-img2vid-xt)", "CC BY-NC-SA 4.0 (Sonic)"),
    )
    CONFIG_KEYS = ("repo", "python")
    ENTRY = "demo.py"
    REPO_FILES = ("checkpoints",)
    GEOMETRY = "resize"
    COMPOSITE_ASPECT = 1.0
    DEFAULT_PARAMS = {**ForeignMethod.DEFAULT_PARAMS, "dynamic_scale": 1.0}

    def prepare_job(self, item, job, seed):
        ref, wav = single_person_inputs(item, job.inputs)
        out = job.out / f"{item.clip_id}.mp4"
        argv = [self.python(), self.entry(), str(ref), str(wav), str(out), "--dynamic_scale", str(self._params["dynamic_scale"])]
        return Invocation(argv=argv, output=f"out/{item.clip_id}.mp4", facts={"seed_used": 72589, "seed_note": "fixed upstream"})
