"""``hallo3``: fudan-generative-vision/hallo3, one person (spec §4 "Hallo3").

``<python> hallo3/sample_video.py --base ./configs/cogvideox_5b_i2v_s2.yaml ./configs/inference.yaml
--seed N --input-file list.txt --output-dir OUT`` with ``WORLD_SIZE=1 RANK=0 LOCAL_RANK=0
LOCAL_WORLD_SIZE=1`` (the shipped script passes ``$RANDOM`` as seed: ours is fixed). The list
file has one ``prompt@@image@@audio.wav`` line. Images must be 1:1 or 3:2: the reference is
centre-cropped to 3:2 here, so the overall map is a cover crop to 720x480. Output
``OUT/<imgstem>-<audiostem>-seed_<N>/000000_with_audio.mp4`` at 25 fps. The weights
(``pretrained_models/``, which bundle CogVideoX-5B-I2V, T5, Kim_Vocal_2, face analysis and
wav2vec) are read relative to the checkout.
"""

from __future__ import annotations

from interactive_eyes.baselines.base import Capabilities, load_reference_frame
from interactive_eyes.baselines.foreign import ForeignMethod, Invocation, centre_crop, write_prompt_list, write_reference, write_tracks


class Hallo3Method(ForeignMethod):
    """Hallo3 (CogVideoX-5B-I2V, single person, 49-frame segments with 2 motion frames)."""

    name = "hallo3"
    version = "1"
    capabilities = Capabilities(
        max_people=1, binding="none", native_fps=25, frame_rule="audio length (49-frame segments, 2 motion frames)",
        resolution="720x480: reference centre-cropped to 3:2 by the adapter, then resized", gpu_memory_gb=48,
        uses_prompt=True, repo="https://github.com/fudan-generative-vision/hallo3", commit="e342dcec",
        code_license="MIT", weight_licenses=("CogVideoX license (CogVideoX-5B-I2V)", "hallo3 weights: see fudan-generative-ai/hallo3"),
    )
    CONFIG_KEYS = ("repo", "python")
    ENTRY = "hallo3/sample_video.py"
    REPO_FILES = ("pretrained_models",)
    GEOMETRY = "cover_crop"
    COMPOSITE_ASPECT = 1.5  # spec §5.6: 3:2 crops for Hallo3

    def prepare_job(self, item, job, seed):
        ref = write_reference(item, job.inputs, rgb=centre_crop(load_reference_frame(item.reference_frame), 1.5))
        (wav,) = write_tracks(item, job.inputs, names=[f"{item.clip_id}.wav"])
        lst = write_prompt_list(job.inputs / "list.txt", [(item.prompt, ref, wav)])
        argv = [self.python(), self.entry(), "--base", "./configs/cogvideox_5b_i2v_s2.yaml", "./configs/inference.yaml",
                "--seed", str(seed), "--input-file", str(lst), "--output-dir", str(job.out)]
        env = {"WORLD_SIZE": "1", "RANK": "0", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1"}
        return Invocation(argv=argv, env=env, output=f"out/{ref.stem}-{wav.stem}-seed_{seed}/000000_with_audio.mp4")
