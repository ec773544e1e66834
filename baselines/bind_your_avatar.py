"""``bind-your-avatar``: Yubo-Shankui/Bind-Your-Avatar-Implementation, exactly 2 people (spec §3.3).

The model makes **one fixed window of 49 frames at 25 fps (1.96 s)**. Longer items are declared
unsupported (``max_duration``), never silently truncated, and items with other than 2 people
too (the code asserts 2). Inputs, per ``infer.py``:

* ``--img_file_path L R``: two face crops, left then right (from the face boxes, each a square
  of 1.6x the face size: the repo crops InsightFace boxes with a margin, ``tools/get_faces_img.py``);
* ``--img_bg_file_path``: the benchmark's reference image (the background condition);
* ``--audio_emb_path L.pt R.pt``: per-person features (T, 12, 768) at 25 fps. The repo ships no
  extraction script; ``_bya_audio_features.py`` (run with the method's own Python, never in
  ours) takes the 12 hidden layers of wav2vec2-base-960h (**unverified**: spec §3.3 says
  "probably") after prepending 0.08 s of silence, so that frame k sits at audio t = k/25
  (the features carry 2 frames of context on each side) and needs 53 frames for 49;
* ``--speaker_pos left``: audio i drives face i. No ``--audio_file``: the mix is muxed by us.

Output ``<output_path>/<seed>_<NNNN>.mp4`` with NNNN = files already in the folder (an empty
folder per job, so 0000), 720x480. Weights folder: ``pretrained/`` (hyb1124/Bindyouravatar)
and ``wav2vec2-base-960h/``.
"""

from __future__ import annotations

from pathlib import Path

from interactive_eyes.baselines.base import Capabilities
from interactive_eyes.baselines.foreign import ForeignMethod, Invocation, face_boxes, write_reference, write_tracks

WINDOW_S = 49 / 25  # 1.96 s
CONTEXT_S = 0.08  # 2 frames of feature context before frame 0
FEATURES = Path(__file__).with_name("_bya_audio_features.py")


def face_crop_box(face, size, scale: float = 1.6):
    x1, y1, x2, y2 = face
    cx, cy, side = (x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1) * scale
    w, h = size
    return (max(0, int(cx - side / 2)), max(0, int(cy - side / 2)), min(w, int(cx + side / 2)), min(h, int(cy + side / 2)))


class BindYourAvatarMethod(ForeignMethod):
    """Bind-Your-Avatar (CogVideoX-5B class, embedding router; one 49-frame window, 2 people)."""

    name = "bind-your-avatar"
    version = "1"
    capabilities = Capabilities(
        max_people=2, binding="face_crops", native_fps=25,
        frame_rule="fixed 49 frames (1.96 s); longer items are unsupported, not truncated",
        resolution="720x480 (CogVideoX), resize", max_duration=WINDOW_S,
        needs_extra_inputs=("audio embeddings (T, 12, 768), computed by the adapter",),
        gpu_memory_gb=40, uses_prompt=True,
        repo="https://github.com/Yubo-Shankui/Bind-Your-Avatar-Implementation", commit="8b726240",
        code_license="none (no license file)", weight_licenses=("CogVideoX license (CogVideoX-5B base)",),
    )
    ENTRY = "infer.py"
    WEIGHT_FILES = ("pretrained", "wav2vec2-base-960h")
    GEOMETRY = "resize"
    DEFAULT_PARAMS = {**ForeignMethod.DEFAULT_PARAMS, "guidance_scale": 7.0, "num_inference_steps": 50}

    def check(self, item):
        if item.n_people != 2:
            return f"{item.n_people} people, bind-your-avatar needs exactly 2"
        return super().check(item)

    def prepare_job(self, item, job, seed):
        from PIL import Image

        from interactive_eyes.baselines.base import load_reference_frame
        from interactive_eyes.baselines.runner import Job, run_job

        ref = load_reference_frame(item.reference_frame)
        bg = write_reference(item, job.inputs, rgb=ref)
        crops = []
        for i, face in enumerate(face_boxes(item)):
            x1, y1, x2, y2 = face_crop_box(face, (ref.shape[1], ref.shape[0]))
            p = job.inputs / f"face{i}.png"
            Image.fromarray(ref[y1:y2, x1:x2]).save(p)
            crops.append(p)
        wavs = write_tracks(item, job.inputs, lead_silence=CONTEXT_S, min_duration=WINDOW_S + 2 * CONTEXT_S)
        embs = [job.inputs / f"person{i + 1}.pt" for i in range(2)]
        # the feature extractor runs as its own job in the method's environment (its torch, its transformers)
        feat = Job(argv=[self.python(), str(FEATURES), "--wav2vec", self.weight("wav2vec2-base-960h"), "--fps", "25",
                         *[a for w, e in zip(wavs, embs) for a in ("--pair", str(w), str(e))]],
                   job_dir=job.job_dir / "features", timeout_s=self.timeout_s(item),
                   env={"CUDA_VISIBLE_DEVICES": str(self._params["gpu"])} if self._params.get("gpu") is not None else {})
        run_job(feat, collect=lambda j: _all_exist(embs))
        p = self._params
        argv = [self.python(), self.entry(), "--img_file_path", *map(str, crops), "--img_bg_file_path", str(bg),
                "--prompt", item.prompt, "--audio_emb_path", *map(str, embs), "--speaker_pos", "left",
                "--num_frames", "49", "--seed", str(seed), "--guidance_scale", str(p["guidance_scale"]),
                "--num_inference_steps", str(p["num_inference_steps"]), "--dtype", "bfloat16",
                "--model_path", self.weight("pretrained"), "--output_path", str(job.out),
                "--log_file_path", str(job.work / "infer.log")]
        return Invocation(argv=argv, output=f"out/{seed}_0000.mp4", facts={"face_crops": [str(c) for c in crops]})


def _all_exist(paths):
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"{p}: audio features not written")
    return paths[-1]
