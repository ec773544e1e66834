"""``echomimic``: antgroup EchoMimic v1 (default) or V3 flash (``--param variant=v3-flash``), one person.

**v1** (spec §4 "EchoMimic v1"): ``<python> -u infer_audio2vid.py --config cfg.yaml -W 512 -H 512
-L 1200 --seed S --cfg 2.5 --steps 30 --fps 24 --context_frames 12 --context_overlap 3
--facemusk_dilation_ratio 0.1 --facecrop_dilation_ratio 0.5``; the config (JSON, a YAML subset)
holds weight paths and ``test_cases: {image: [audio]}``. The output is a **512x512 crop around
the largest face**, not the full frame: the analytic map is a box crop of the face box grown
by ``facecrop_dilation_ratio`` on each side (made square), checked by registration (the exact
box of the detector is only known after the fact). Output ``output/<date>/<HHMM>--seed_.../
..._withaudio.mp4`` relative to the working directory. Weights folder: ``echomimic/`` (BadToBest/
EchoMimic: denoising_unet.pth, reference_unet.pth, motion_module.pth, face_locator.pth,
sd-vae-ft-mse/, sd-image-variations-diffusers/, audio_processor/whisper_tiny.pt).

**v3-flash**: ``<python> infer_flash.py --image_path --audio_path --prompt --save_path
--model_name <Wan2.1-Fun-V1.1-1.3B-InP> --transformer_path <flash> --wav2vec_model_dir
<chinese-wav2vec2-base> --num_inference_steps 8 --video_length N --sample_size 768 768 --fps 25``:
``--video_length`` defaults to 81 (cuts at 3.24 s) and is raised to the 4n+1 covering the clip.
Output ``<save_path>/<image name>_output.mp4``, aspect kept (resize). Weights folder:
``Wan2.1-Fun-V1.1-1.3B-InP/``, ``echomimicv3-flash-pro/``, ``chinese-wav2vec2-base/``.
"""

from __future__ import annotations

import json

from interactive_eyes.baselines.base import Capabilities, frame_count
from interactive_eyes.baselines.foreign import ForeignMethod, Invocation, face_boxes, frames_4n1, single_person_inputs

V1_FILES = ("echomimic/denoising_unet.pth", "echomimic/reference_unet.pth", "echomimic/motion_module.pth",
            "echomimic/face_locator.pth", "echomimic/sd-vae-ft-mse", "echomimic/sd-image-variations-diffusers",
            "echomimic/audio_processor/whisper_tiny.pt")
V3_FILES = ("Wan2.1-Fun-V1.1-1.3B-InP", "echomimicv3-flash-pro", "chinese-wav2vec2-base")
FPS = {"v1": 24, "v3-flash": 25}


def face_crop(face, size, dilation: float):
    """EchoMimic v1's crop: the face box grown by ``dilation`` x its size on each side, made square
    about its centre and clipped to the image."""
    x1, y1, x2, y2 = face
    side = max(x2 - x1, y2 - y1) * (1 + 2 * dilation)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    w, h = size
    side = min(side, w, h)
    bx = min(max(0.0, cx - side / 2), w - side)
    by = min(max(0.0, cy - side / 2), h - side)
    return (bx, by, bx + side, by + side)


class EchoMimicMethod(ForeignMethod):
    """EchoMimic v1 (SD-1.5 UNets, face-crop output) or V3 flash (Wan-1.3B, 8 steps); single person."""

    name = "echomimic"
    version = "1"
    capabilities = Capabilities(
        max_people=1, binding="none", native_fps=24,
        frame_rule="v1: min(-L 1200, 24*T); v3-flash (25 fps): --video_length raised to the 4n+1 covering T",
        resolution="v1: 512x512 crop around the face (face box x(1+2*0.5)); v3-flash: ~768^2 area, aspect kept",
        gpu_memory_gb=16, repo="https://github.com/antgroup/echomimic", commit="a53e9704",
        code_license="Apache-2.0", weight_licenses=("Apache-2.0 (EchoMimic)", "CreativeML OpenRAIL-M (SD-1.5 parts)"),
    )
    ENTRY = "infer_audio2vid.py"
    COMPOSITE_ASPECT = 1.0
    DEFAULT_PARAMS = {**ForeignMethod.DEFAULT_PARAMS, "variant": "v1", "cfg": 2.5, "steps": 30,
                      "facecrop_dilation_ratio": 0.5, "v3_steps": 8, "v3_guidance_scale": 6.0, "v3_audio_guidance_scale": 3.0}

    def __init__(self, **params):
        super().__init__(**params)
        if self._params["variant"] not in FPS:
            raise ValueError(f"method 'echomimic': variant must be one of {sorted(FPS)}")
        if self._params["variant"] == "v3-flash":
            self.ENTRY = "infer_flash.py"
            self.GEOMETRY = "resize"
        else:
            self.GEOMETRY = "box_crop"

    @property
    def WEIGHT_FILES(self):  # noqa: N802
        return V1_FILES if self._params["variant"] == "v1" else V3_FILES

    def fps(self) -> float:
        return float(FPS[self._params["variant"]])

    def geometry_fn(self, item):
        if self.GEOMETRY != "box_crop":
            return super().geometry_fn(item)
        from interactive_eyes.baselines import geometry as g

        face = face_boxes(item)[0]
        return lambda r, o: g.box_crop(r, o, face_crop(face, r, self._params["facecrop_dilation_ratio"]))

    def prepare_job(self, item, job, seed):
        p = self._params
        ref, wav = single_person_inputs(item, job.inputs)
        if p["variant"] == "v3-flash":
            n = frames_4n1(frame_count(item.duration, 25))
            argv = [self.python(), self.entry(), "--image_path", str(ref), "--audio_path", str(wav), "--prompt", item.prompt,
                    "--save_path", str(job.out), "--model_name", self.weight("Wan2.1-Fun-V1.1-1.3B-InP"),
                    "--transformer_path", self.weight("echomimicv3-flash-pro/diffusion_pytorch_model.safetensors"),
                    "--wav2vec_model_dir", self.weight("chinese-wav2vec2-base"), "--config_path", "config/config.yaml",
                    "--num_inference_steps", str(p["v3_steps"]), "--video_length", str(n), "--sample_size", "768", "768",
                    "--fps", "25", "--guidance_scale", str(p["v3_guidance_scale"]),
                    "--audio_guidance_scale", str(p["v3_audio_guidance_scale"]), "--seed", str(seed)]
            return Invocation(argv=argv, output=f"out/{ref.stem}_output.mp4", facts={"video_length": n})
        e = lambda f: self.weight(f"echomimic/{f}")  # noqa: E731
        cfg = {"pretrained_base_model_path": e("sd-image-variations-diffusers"), "pretrained_vae_path": e("sd-vae-ft-mse"),
               "audio_model_path": e("audio_processor/whisper_tiny.pt"), "denoising_unet_path": e("denoising_unet.pth"),
               "reference_unet_path": e("reference_unet.pth"), "face_locator_path": e("face_locator.pth"),
               "motion_module_path": e("motion_module.pth"), "inference_config": "./configs/inference/inference_v2.yaml",
               "weight_dtype": "fp16", "test_cases": {str(ref): [str(wav)]}}
        path = job.inputs / "animation.yaml"
        path.write_text(json.dumps(cfg, indent=2))
        argv = [self.python(), "-u", self.entry(), "--config", str(path), "-W", "512", "-H", "512", "-L", "1200",
                "--seed", str(seed), "--cfg", str(p["cfg"]), "--steps", str(p["steps"]), "--fps", "24",
                "--context_frames", "12", "--context_overlap", "3", "--facemusk_dilation_ratio", "0.1",
                "--facecrop_dilation_ratio", str(p["facecrop_dilation_ratio"])]
        return Invocation(argv=argv, output="work/output/**/*_withaudio.mp4", facts={"config": cfg})
