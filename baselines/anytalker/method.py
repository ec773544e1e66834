"""``anytalker``: the AnyTalker-1.3B reference generator as a benchmark method (baselines/base.py contract).

Per clip (spec/baselines.md §2, anytalker-model.md §2): the reference frame, one already
zero-padded track per person (the official "pad" mode), the prompt; people bound left to right
to the n largest faces of the reference frame (``faces.py``). Output: F = 4n+1 frames from the
longest track at **24 fps** (the official script writes 16 unless ``--sample_fps 24`` is passed),
written with the benchmark mix (the plain sum of the tracks, base.mix_tracks) muxed, not the
official quieter ``amix``. Frame 0 is audio t = 0; the mix runs up to 3 frames (125 ms) past the
last frame because F rounds ceil(24 T) down to 4n+1.

Parameters (``--param KEY=VALUE``): ``steps`` (20, the official default; the README's 1.3B command
uses 40), ``guidance`` (4.5), ``seed`` (None: the run's ``--seed``), ``size`` (area budget "832*480"),
``shift`` (None: 3.0 at 832*480 / 480*832, else 5.0), ``dtype`` (auto: bfloat16 on CUDA, float32 on
the CPU), ``device`` (auto), ``offload`` (auto: on for GPUs under 40 GiB), ``ckpt_dir`` (a folder in
the official ``checkpoints/`` layout; default the ie-bench cache), ``face_detector`` (tracker |
insightface), ``batch_cfg`` (true: cond and uncond in one DiT call), ``negative_prompt`` (None: the
official one), ``vocal_separation`` (false: the benchmark tracks are clean speech already; true runs
the official Kim_Vocal_2 MDX-Net separator on every track before wav2vec2, ``vocals.py``, cached in
the run folder's ``audio_preprocess/``), ``model_configs`` (a JSON file of encoder sizes, for
non-released checkpoints such as the tiny test files).

Deterministic for a fixed seed on one device: the noise comes from a generator seeded on the
device, everything else is deterministic (byte-identical frames on the CPU; on CUDA as far as the
kernels are).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from interactive_eyes.baselines.base import Capabilities, Item, Method

from . import files as _files
from .shapes import FPS, VAE_STRIDE_TEMPORAL, frame_count

# RoPE tables cover 1024 latent frames (§5.11, §9.3): F <= 4093 (pipeline.MAX_FRAMES), and
# 4n+1 <= ceil(24 T) with F <= 4093  <=>  T <= (4093 + 3) / 24 s
MAX_DURATION = ((1024 - 1) * VAE_STRIDE_TEMPORAL + 1 + 3) / FPS
OFFLOAD_BELOW_GIB = 40  # 1.3B without offloading wants more than a 24 GB card (issue 12: 80 GB fits)
DTYPES = {"bfloat16": "bfloat16", "bf16": "bfloat16", "float16": "float16", "fp16": "float16",
          "float32": "float32", "fp32": "float32"}


class AnyTalkerMethod(Method):
    """AnyTalker-1.3B (native reimplementation): Wan2.1-Fun InP DiT with audio-face cross attention."""

    name = "anytalker"
    version = "1"
    capabilities = Capabilities(
        max_people=None,
        binding="left_right_detection",
        native_fps=FPS,
        frame_rule="((ceil(24 T) - 1) // 4) * 4 + 1 frames, T = the longest track (4n+1)",
        resolution="area of `size` (832*480), aspect ratio of the reference frame, snapped to multiples of 32 "
                   "(16:9 -> 832x448)",
        max_duration=MAX_DURATION,
        gpu_memory_gb=24,
        needs_reference_frame=True,
        muxes_audio=True,
        uses_prompt=True,
        deterministic=True,
        repo="HKUST-C4G/AnyTalker",
        commit="e5490b6",
        code_license="Apache-2.0",
        weight_licenses=("Apache-2.0 (zzz66/AnyTalker-1.3B)", "Apache-2.0 (alibaba-pai/Wan2.1-Fun-V1.1-1.3B-InP)",
                         "Apache-2.0 (facebook/wav2vec2-base-960h)"),
    )
    DEFAULT_PARAMS = {
        "steps": 20, "guidance": 4.5, "seed": None, "size": "832*480", "shift": None, "dtype": "auto",
        "device": "auto", "offload": "auto", "ckpt_dir": None, "face_detector": "tracker", "batch_cfg": True,
        "negative_prompt": None, "vocal_separation": False, "model_configs": None,
    }

    def __init__(self, **params: Any):
        super().__init__(**params)
        p = self._params
        vs = p["vocal_separation"]  # --param's JSON gives booleans; a string from a config file
        vs = vs.strip().lower() if isinstance(vs, str) else vs
        if vs not in (True, False, None, "true", "false"):  # (1 and 0 compare equal to True and False)
            raise ValueError(f"anytalker: vocal_separation must be true or false, got {p['vocal_separation']!r}")
        self._vocal_separation = vs in (True, "true")
        self._separator = None
        if int(p["steps"]) < 1:
            raise ValueError(f"anytalker: steps must be >= 1, got {p['steps']}")
        if str(p["dtype"]) != "auto" and str(p["dtype"]) not in DTYPES:
            raise ValueError(f"anytalker: dtype must be auto or one of {sorted(set(DTYPES.values()))}, got {p['dtype']!r}")
        from .faces import DETECTORS
        from .shapes import parse_size

        if p["face_detector"] not in DETECTORS:
            raise ValueError(f"anytalker: face_detector must be one of {DETECTORS}, got {p['face_detector']!r}")
        parse_size(p["size"])
        self._pipeline = None
        self._files: _files.AnyTalkerFiles | None = None

    # ------------------------------------------------------------------ before any clip
    def prepare(self) -> None:
        """Find every model file; :class:`~.files.MissingFilesError` lists all missing ones (the run
        driver calls this before the first clip, so a run without weights stops at once)."""
        self._files = _files.locate(self._params["ckpt_dir"])
        if self._vocal_separation and self._separator is None:  # the ONNX file's shapes are checked here
            from .vocals import VocalSeparator, locate_model

            self._separator = VocalSeparator(locate_model(self._params["ckpt_dir"]), device=self._device().type)

    def _device(self):
        import torch

        d = self._params["device"]
        if d in (None, "auto"):
            d = "cuda" if torch.cuda.is_available() else "cpu"
        return torch.device(d)

    def _load(self):
        if self._pipeline is not None:
            return self._pipeline
        import json

        import torch

        from .pipeline import AnyTalkerPipeline

        if self._files is None:
            self.prepare()
        dev = self._device()
        dt = self._params["dtype"]
        dtype = None if dt == "auto" else getattr(torch, DTYPES[str(dt)])
        off = self._params["offload"]
        if off == "auto":
            off = dev.type == "cuda" and torch.cuda.get_device_properties(dev).total_memory < OFFLOAD_BELOW_GIB * 2**30
        cfgs = None
        if self._params["model_configs"]:
            cfgs = json.loads(Path(self._params["model_configs"]).read_text())
        self._pipeline = AnyTalkerPipeline.from_files(self._files, device=dev, dtype=dtype, offload=bool(off),
                                                      model_configs=cfgs)
        return self._pipeline

    # ------------------------------------------------------------------ one clip
    def generate(self, item: Item, out_path: Path, *, seed: int) -> dict[str, Any]:
        import hashlib

        import numpy as np
        from PIL import Image

        from interactive_eyes.baselines.base import frame_count as base_frame_count
        from interactive_eyes.baselines.base import load_tracks, mix_tracks
        from interactive_eyes.media.audio import audio_info
        from interactive_eyes.media.video import write_video

        from .audio import AUDIO_SAMPLE_RATE
        from .faces import detect_faces
        from .pipeline import load_waves

        t0 = time.perf_counter()
        p = self._params
        with Image.open(item.reference_frame) as im:  # original size, as the official PIL load (§8.5)
            rgb = np.asarray(im.convert("RGB"))
        boxes = detect_faces(rgb, item.n_people, p["face_detector"])
        # F from T, the item's duration = the longest track (the official librosa duration of the
        # longest file, §9.2 pad mode); tracks are cut to T (a manifest may use a part of a file)
        file_duration = max(audio_info(person.audio).duration for person in item.people)
        duration = min(float(item.duration), file_duration)
        n_frames = frame_count(duration)
        separated = None
        if self._vocal_separation:  # §7.1 step 2 on the whole file, cached per track in the run folder
            if self._separator is None:
                self.prepare()
            ts = time.perf_counter()
            from .vocals import CACHE_DIR

            tracks_16k, records = self._separator.tracks([q.audio for q in item.people],
                                                          Path(out_path).parent / CACHE_DIR)
            separated = {**self._separator.describe(), "tracks": records,
                         "seconds": round(time.perf_counter() - ts, 3)}
        else:
            tracks_16k = load_waves([q.audio for q in item.people])
        waves = [w[: int(round(duration * AUDIO_SAMPLE_RATE))] for w in tracks_16k]
        pipe = self._load()
        t1 = time.perf_counter()
        seed_used = int(p["seed"]) if p["seed"] is not None else int(seed)
        result = pipe.generate(
            rgb, waves, boxes, num_frames=n_frames,
            prompt=item.prompt, negative_prompt=p["negative_prompt"], size=str(p["size"]), seed=seed_used,
            steps=int(p["steps"]), guidance=float(p["guidance"]),
            shift=None if p["shift"] is None else float(p["shift"]), batch_cfg=bool(p["batch_cfg"]),
        )
        tracks, rate = load_tracks(item)
        mix, clipped = mix_tracks(tracks)
        t2 = time.perf_counter()
        # The contract (base.py, spec/baselines.md §5.4 step 3) wants round(24 T) frames; AnyTalker
        # makes the largest 4n+1 <= ceil(24 T), i.e. 0-3 frames fewer (or 1 more when ceil and round
        # differ): the last generated frame is repeated (or the extra one dropped), and recorded.
        n_out = base_frame_count(item.duration, FPS)
        frames = result.frames
        order = list(range(min(n_out, len(frames)))) + [len(frames) - 1] * max(0, n_out - len(frames))
        write_video(out_path, (frames[i] for i in order), FPS, audio=mix, audio_rate=rate)
        h, w = frames.shape[1:3]
        ih, iw = rgb.shape[:2]
        info = {
            **result.info,
            "fps": FPS,
            "frames": n_out,  # in the file
            "generated_frames": n_frames,  # 4n+1 (§9.2)
            # fingerprint of the generated uint8 frames before H.264: the determinism check (the
            # encoder's bytes are not reproducible under CPU contention, see docs/anytalker.md)
            "frames_sha256": hashlib.sha256(np.ascontiguousarray(frames).tobytes()).hexdigest(),
            "valid_frames": min(n_out, n_frames),
            "padded_frames": max(0, n_out - n_frames),
            "duration": n_out / FPS,
            "audio_duration": duration,
            "audio_file_duration": file_duration,
            "seed": seed_used,
            "audio_rate": rate,
            "audio_channels": int(mix.shape[1]),
            "mix_clipped_samples": clipped,
            "vocal_separation": self._vocal_separation,
            "vocal_separator": separated,  # model path, sha256, provider, cache file per track
            "face_detector": p["face_detector"],
            # plain resize of the whole reference frame (no crop): reference -> output scale
            "geometry": {"sx": w / iw, "sy": h / ih, "tx": 0.0, "ty": 0.0, "crop": [0, 0, iw, ih]},
            "weights": self._files.describe() if self._files is not None else None,
            "seconds_prepare": round(t1 - t0, 3),
            "seconds_generate": round(t2 - t1, 3),
            "seconds_encode": round(time.perf_counter() - t2, 3),
        }
        return info
