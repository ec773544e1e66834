"""``stableavatar``: Francis-Rings/StableAvatar, one person (spec §4 "StableAvatar").

``<python> inference.py`` with the flags of ``inference.sh``. The code stretches the image to
``--width x --height`` (one of 512x512, 480x832, 832x480), so the reference is centre-cropped
here to the nearest of those aspect ratios first (square uses ``transformer3d-square.pt``, the
others ``transformer3d-rec-vec.pt``); the overall map is a cover crop. Output is a **fixed
name**, ``<output_dir>/video_without_audio.mp4``, without audio (the mix is muxed by
normalisation). Weights folder (FrancisRing/StableAvatar)::

    Wan2.1-Fun-V1.1-1.3B-InP/  wav2vec2-base-960h/  StableAvatar-1.3B/transformer3d-{square,rec-vec}.pt
"""

from __future__ import annotations

from interactive_eyes.baselines.base import Capabilities, load_reference_frame
from interactive_eyes.baselines.foreign import ForeignMethod, Invocation, centre_crop, single_person_inputs

SIZES = ((512, 512), (480, 832), (832, 480))  # width, height


def pick_size(w: int, h: int) -> tuple[int, int]:
    """The supported size whose aspect ratio is closest (in log ratio) to w/h."""
    import math

    return min(SIZES, key=lambda s: abs(math.log((s[0] / s[1]) / (w / h))))


class StableAvatarMethod(ForeignMethod):
    """StableAvatar (Wan2.1-Fun-1.3B, single person, no audio in its output)."""

    name = "stableavatar"
    version = "1"
    capabilities = Capabilities(
        max_people=1, binding="none", native_fps=25, frame_rule="audio length (81-frame windows, overlap 5)",
        resolution="512x512, 480x832 or 832x480 (stretch; the adapter centre-crops first)", gpu_memory_gb=18,
        muxes_audio=False, uses_prompt=True, repo="https://github.com/Francis-Rings/StableAvatar", commit="46c04929",
        code_license="MIT", weight_licenses=("Apache-2.0 (Wan2.1-Fun)", "StableAvatar weights: see FrancisRing/StableAvatar"),
    )
    ENTRY = "inference.py"
    WEIGHT_FILES = ("Wan2.1-Fun-V1.1-1.3B-InP", "wav2vec2-base-960h", "StableAvatar-1.3B/transformer3d-square.pt",
                    "StableAvatar-1.3B/transformer3d-rec-vec.pt")
    GEOMETRY = "cover_crop"
    COMPOSITE_ASPECT = 1.0
    DEFAULT_PARAMS = {**ForeignMethod.DEFAULT_PARAMS, "sample_steps": 50, "gpu_memory_mode": "model_full_load",
                      "text_guide_scale": 3.0, "audio_guide_scale": 5.0}

    def prepare_job(self, item, job, seed):
        p = self._params
        rgb = load_reference_frame(item.reference_frame)
        w, h = pick_size(rgb.shape[1], rgb.shape[0])
        ref, wav = single_person_inputs(item, job.inputs, rgb=centre_crop(rgb, w / h))
        tr = "transformer3d-square.pt" if w == h else "transformer3d-rec-vec.pt"
        argv = [self.python(), self.entry(), "--config_path", "deepspeed_config/wan2.1/wan_civitai.yaml",
                "--pretrained_model_name_or_path", self.weight("Wan2.1-Fun-V1.1-1.3B-InP"),
                "--transformer_path", self.weight(f"StableAvatar-1.3B/{tr}"),
                "--pretrained_wav2vec_path", self.weight("wav2vec2-base-960h"),
                "--validation_reference_path", str(ref), "--validation_driven_audio_path", str(wav),
                "--validation_prompts", item.prompt, "--output_dir", str(job.out), "--width", str(w), "--height", str(h),
                "--sample_steps", str(p["sample_steps"]), "--overlap_window_length", "5", "--clip_sample_n_frames", "81",
                "--motion_frame", "25", "--GPU_memory_mode", p["gpu_memory_mode"],
                "--sample_text_guide_scale", str(p["text_guide_scale"]),
                "--sample_audio_guide_scale", str(p["audio_guide_scale"]), "--seed", str(seed)]
        return Invocation(argv=argv, output="out/video_without_audio.mp4", facts={"size": [w, h], "transformer": tr})
