"""``aniportrait``: Zejun-Yang/AniPortrait audio-to-video, one person (spec §4 "AniPortrait").

``<python> -m scripts.audio2vid --config cfg.yaml -W 512 -H 512 --seed S --cfg 3.5 --steps 25
--fps 30``. The config is written here (YAML is a superset of JSON, so it is JSON): weight
paths and ``test_cases: {image: [audio]}``. The image is resized to W x H without cropping, so
it is centre-cropped to a square first (overall: a cover crop to 512x512). Without a pose
template audio-to-pose crashes on audio under 5 s (issue #137): ``min_duration`` 5 s. Output
``output/<date>/<HHMM>--seed_<s>-512x512/<ref>_<audio>_512x512_3.5_<HHMM>.mp4`` relative to
the working directory (the job's own). Weights folder::

    pretrained_weights/ (denoising_unet.pth, reference_unet.pth, pose_guider.pth, motion_module.pth,
    audio2mesh.pt, audio2pose.pt, film_net_fp16.pt), stable-diffusion-v1-5/, sd-vae-ft-mse/,
    sd-image-variations-diffusers/image_encoder, wav2vec2-base-960h/
"""

from __future__ import annotations

import json

from interactive_eyes.baselines.base import Capabilities, load_reference_frame
from interactive_eyes.baselines.foreign import ForeignMethod, Invocation, centre_crop, single_person_inputs

PW = "pretrained_weights"


class AniPortraitMethod(ForeignMethod):
    """AniPortrait (SD-1.5 UNets, audio -> mesh -> pose -> video; single person)."""

    name = "aniportrait"
    version = "1"
    capabilities = Capabilities(
        max_people=1, binding="none", native_fps=30, frame_rule="audio length at 30 fps",
        resolution="512x512 stretch (the adapter centre-crops to square first)", min_duration=5.0,
        gpu_memory_gb=16, repo="https://github.com/Zejun-Yang/AniPortrait", commit="7f6593fd",
        code_license="Apache-2.0", weight_licenses=("CreativeML OpenRAIL-M (SD-1.5)", "AniPortrait weights: see ZJYang/AniPortrait"),
    )
    ENTRY = "scripts/audio2vid.py"
    WEIGHT_FILES = (f"{PW}/denoising_unet.pth", f"{PW}/reference_unet.pth", f"{PW}/pose_guider.pth",
                    f"{PW}/motion_module.pth", f"{PW}/audio2mesh.pt", f"{PW}/audio2pose.pt", "stable-diffusion-v1-5",
                    "sd-vae-ft-mse", "sd-image-variations-diffusers/image_encoder", "wav2vec2-base-960h")
    GEOMETRY = "cover_crop"
    COMPOSITE_ASPECT = 1.0
    DEFAULT_PARAMS = {**ForeignMethod.DEFAULT_PARAMS, "cfg": 3.5, "steps": 25}

    def prepare_job(self, item, job, seed):
        p = self._params
        ref, wav = single_person_inputs(item, job.inputs, rgb=centre_crop(load_reference_frame(item.reference_frame), 1.0))
        cfg = {
            "pretrained_base_model_path": self.weight("stable-diffusion-v1-5"),
            "pretrained_vae_path": self.weight("sd-vae-ft-mse"),
            "image_encoder_path": self.weight("sd-image-variations-diffusers/image_encoder"),
            "denoising_unet_path": self.weight(f"{PW}/denoising_unet.pth"),
            "reference_unet_path": self.weight(f"{PW}/reference_unet.pth"),
            "pose_guider_path": self.weight(f"{PW}/pose_guider.pth"),
            "motion_module_path": self.weight(f"{PW}/motion_module.pth"),
            "audio_inference_config": "./configs/inference/inference_audio.yaml",
            "inference_config": "./configs/inference/inference_v2.yaml",
            "weight_dtype": "fp16",
            "a2m_model": {"model_path": self.weight("wav2vec2-base-960h")},
            "a2p_model": {"model_path": self.weight("wav2vec2-base-960h")},
            "pretrained_model": {"a2m_ckpt": self.weight(f"{PW}/audio2mesh.pt"), "a2p_ckpt": self.weight(f"{PW}/audio2pose.pt")},
            "test_cases": {str(ref): [str(wav)]},
        }
        path = job.inputs / "config.yaml"
        path.write_text(json.dumps(cfg, indent=2))
        argv = [self.python(), "-m", "scripts.audio2vid", "--config", str(path), "-W", "512", "-H", "512",
                "--seed", str(seed), "--cfg", str(p["cfg"]), "--steps", str(p["steps"]), "--fps", "30"]
        return Invocation(argv=argv, output="work/output/**/*.mp4", facts={"config": cfg})
