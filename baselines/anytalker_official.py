"""``anytalker-official``: the official HKUST-C4G/AnyTalker repository, run as-is (spec §2).

So the native generator (``anytalker``) can be compared with the reference implementation on a
machine that has the weights. ``<python> generate_a2v_batch_multiID.py`` with:

* ``--batch_gen_json``: ``{clip_id: {"image_path", "caption", "enhance_caption", "audio_list"}}``;
  ``caption`` and ``enhance_caption`` are **equal** (when both are set and differ the item is
  generated twice); ``audio_list`` is the tracks in left-to-right person order; absolute paths
  (the script resolves them against its working directory);
* ``--sample_fps 24`` always: without it frames are counted at 24 fps but written at 16 fps, and
  the video plays 1.5x too long (gotcha 1; normalisation also rejects a 16 fps file);
* ``--mode pad``: every track covers the whole clip (silence while that person is not speaking);
  F = largest 4n+1 <= ceil(T * 24) frames, so normalisation pads up to 3 frames;
* ``--batch_output`` = the job's ``out/``, emptied before every attempt (the
  ``audio_preprocess/`` cache is keyed by file names and would go stale, gotcha 3).

Output ``<key>_audio0_<stem0>_audio1_<stem1>..._cfg_<scale>.mp4``. The code reads
``checkpoints/wav2vec2-base-960h`` and ``checkpoints/vocal_separator/Kim_Vocal_2.onnx`` relative
to its working directory (pre-stage them in the checkout) and InsightFace ``buffalo_l`` from
``~/.insightface`` (or ``insightface_home``). Weights folder::

    Wan2.1-Fun-V1.1-1.3B-InP/   AnyTalker-1.3B/ (1_3B-single-v1.pth, 14B-multi-v1.pth, config_af2v_*.json)
"""

from __future__ import annotations

import json

from interactive_eyes.baselines.base import Capabilities
from interactive_eyes.baselines.foreign import ForeignMethod, Invocation, write_reference, write_tracks

MODELS = {  # task, checkpoint, DiT config (spec §1a)
    "1.3B": ("a2v-1.3B", "AnyTalker-1.3B/1_3B-single-v1.pth", "AnyTalker-1.3B/config_af2v_1_3B.json"),
    "14B": ("a2v-14B", "AnyTalker-1.3B/14B-multi-v1.pth", "AnyTalker-1.3B/config_af2v_14B.json"),
}


class AnyTalkerOfficialMethod(ForeignMethod):
    """The official AnyTalker scripts (any number of people, InsightFace left-to-right binding)."""

    name = "anytalker-official"
    version = "1"
    capabilities = Capabilities(
        max_people=None, binding="left_right_detection", native_fps=24,
        frame_rule="pad mode: largest 4n+1 <= ceil(24*T), one pass",
        resolution="area of --size (832*480), aspect ratio of the input, multiples of 32, plain resize",
        gpu_memory_gb=80, uses_prompt=True,
        repo="https://github.com/HKUST-C4G/AnyTalker", commit="e5490b60",
        code_license="Apache-2.0", weight_licenses=("Apache-2.0 (Wan2.1-Fun)", "AnyTalker weights: see zzz66/AnyTalker-1.3B"),
    )
    ENTRY = "generate_a2v_batch_multiID.py"
    REPO_FILES = ("checkpoints/wav2vec2-base-960h", "checkpoints/vocal_separator/Kim_Vocal_2.onnx")

    @property
    def WEIGHT_FILES(self):  # noqa: N802 (the checkpoint and DiT config of the chosen model)
        _, ckpt, cfg = MODELS.get(self._params["model"], MODELS["1.3B"])
        return ("Wan2.1-Fun-V1.1-1.3B-InP", ckpt, cfg)

    GEOMETRY = "resize"
    DEFAULT_PARAMS = {**ForeignMethod.DEFAULT_PARAMS, "model": "1.3B", "size": "832*480", "sample_steps": 40,
                      "sample_guide_scale": 4.5, "sample_shift": None, "det_thresh": 0.15, "use_half": None,
                      "insightface_home": None}

    def prepare_job(self, item, job, seed):
        p = self._params
        if p["model"] not in MODELS:
            raise ValueError(f"anytalker-official: model must be one of {sorted(MODELS)}, got {p['model']!r}")
        task, ckpt, cfg = MODELS[p["model"]]
        ref = write_reference(item, job.inputs)
        tracks = write_tracks(item, job.inputs)
        doc = {item.clip_id: {"image_path": str(ref), "caption": item.prompt, "enhance_caption": item.prompt,
                              "audio_list": [str(t) for t in tracks]}}
        js = job.inputs / "batch.json"
        js.write_text(json.dumps(doc, indent=2))
        # README: sample_shift 3.0 at 832x480 / 480x832, else 5.0; use_half for 14B
        shift = p["sample_shift"] if p["sample_shift"] is not None else (3.0 if p["size"] in ("832*480", "480*832") else 5.0)
        half = p["use_half"] if p["use_half"] is not None else p["model"] == "14B"
        argv = [self.python(), self.entry(), "--task", task, "--size", p["size"],
                "--ckpt_dir", self.weight("Wan2.1-Fun-V1.1-1.3B-InP"), "--post_trained_checkpoint_path", self.weight(ckpt),
                "--dit_config", self.weight(cfg), "--batch_gen_json", str(js), "--batch_output", str(job.out),
                "--sample_fps", "24", "--mode", "pad", "--sample_steps", str(p["sample_steps"]),
                "--sample_guide_scale", str(p["sample_guide_scale"]), "--sample_shift", str(shift),
                "--det_thresh", str(p["det_thresh"]), "--base_seed", str(seed), "--use_half", str(bool(half))]
        env = {"INSIGHTFACE_HOME": str(p["insightface_home"])} if p["insightface_home"] else {}
        return Invocation(argv=argv, output=f"out/{item.clip_id}_audio0_*.mp4", env=env, facts={"batch_json": doc})
