"""The AnyTalker image + audio tracks -> video pipeline (§2 of ``shared/spec/anytalker-model.md``).

:class:`AnyTalkerPipeline` holds the five networks (DiT, Wan VAE, umT5 + tokenizer, CLIP ViT-H/14,
wav2vec2) and runs one clip:

1. output size from the image aspect ratio and the area budget (§9.1), F = 4n+1 frames (§9.2);
2. text: prompt and negative prompt through umT5, each cut to its real tokens (§10.5);
3. image: CLIP tokens of the whole image (§8.5);
4. VAE latent of [image resized bicubically to the output size, F-1 zero frames] (§2 step 6);
5. faces: boxes (``faces.py``) -> squares, masks, token masks, y's mask channels, crops (§8, ``masks.py``);
   each crop through CLIP;
6. audio: per track 16 kHz mono -> wav2vec2 windows (§7.1, pad mode: the tracks share one timeline);
7. sampling: UniPC, two DiT passes per step, one guidance scale (§10, ``sampling.py``);
8. VAE decode -> frames in [-1, 1] -> clamp -> uint8 by truncation (§10.6).

Memory: with ``offload=True`` every network lives on the CPU and visits the GPU only for its own
step (text encoder and VAE are off the GPU while the DiT samples), so the peak is the DiT's
(1.3B: 2.6 GB of bf16 weights plus activations) or the VAE decode's. Without offloading all
networks stay on the GPU. The Wan VAE decodes causally chunk by chunk over time (one latent frame
at a time with its cache), so long clips do not need memory for the whole video at once.

Long audio: there is no multi-window machinery in the official pipeline (§9.3): the whole clip is
one pass of F frames; the RoPE tables limit it to 1024 latent frames (F <= 4093, 170 s).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from . import sampling, shapes
from .audio import AUDIO_SAMPLE_RATE, wav2vec_features
from .masks import build_face_masks
from .scheduler import sample_shift_for_size

MAX_LATENT_FRAMES = 1024  # RoPE table length per axis (§9.3, §5.11)
MAX_FRAMES = (MAX_LATENT_FRAMES - 1) * shapes.VAE_STRIDE_TEMPORAL + 1

# §10.4: the official config's `sample_neg_prompt` (wan/configs/shared_config.py at e5490b6), used
# when no negative prompt is given. SHA-256 of its UTF-8 bytes pinned by the spec (tested).
NEGATIVE_PROMPT = (
    "This shot begins with a scene, then becomes a distorted scene with subtitles, captions, and words on the "
    "bottom, featuring an ugly, incomplete or unnatural-looking character or object with extra fingers, poorly "
    "drawn hands and face, deformed and disfigured limbs, fused fingers, three legs, deformed arms or legs, "
    "distorted body passing through objects, swapped left and right arms, swapped left and right legs, or a "
    "deformed face on the back. The mouth movements are unnatural and not synchronized with the speech; lip "
    "motion is delayed or mismatched with the voice, showing poor lip-sync accuracy, with visible imperfections "
    "or distortions in the teeth. The facial expressions are stiff, frozen, or flickering, with jittering eyes "
    "and inconsistent gaze direction. The characters' necks or heads appear twisted. The objects and background "
    "in the scene are crashed, broken, or deformed, unnaturally distorted, and changing their front and back "
    "orientation."
)
NEGATIVE_PROMPT_SHA256 = "3c1b589315ce40a31ee4d46bd1877730b9255a0bd02dc81512474d6289ad6cb2"


@dataclass
class Networks:
    dit: Any
    vae: Any
    t5: Any
    clip: Any
    wav2vec: Any
    do_normalize: bool = True  # wav2vec2 preprocessor_config.json (true for wav2vec2-base-960h, §7.1 step 4)


@dataclass
class Result:
    frames: np.ndarray  # [F, h, w, 3] uint8
    info: dict = field(default_factory=dict)


def _move(net: Any, device: torch.device) -> None:
    """Move a network (an nn.Module, or a wrapper with ``.to``) to ``device``."""
    if net is not None and hasattr(net, "to"):
        net.to(device)


def image_tensor(rgb: np.ndarray) -> torch.Tensor:
    """uint8 HWC RGB -> float32 [3, H, W] in [-1, 1]: torchvision to_tensor, then (x - 0.5) / 0.5."""
    x = torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1).float().div(255)
    return x.sub(0.5).div(0.5)


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """[3, F, h, w] in [-1, 1] -> [F, h, w, 3] uint8: clamp, (x + 1) / 2 * 255, truncated (§10.6)."""
    x = ((video.float().clamp(-1, 1) + 1) / 2 * 255).to(torch.uint8)
    return x.permute(1, 2, 3, 0).contiguous().cpu().numpy()


class AnyTalkerPipeline:
    """The networks plus where they run; :meth:`generate` makes one clip."""

    def __init__(self, nets: Networks, *, device: str | torch.device = "cpu", offload: bool = False) -> None:
        self.nets = nets
        self.device = torch.device(device)
        self.offload = bool(offload)
        self._home = torch.device("cpu") if self.offload else self.device
        for net in (nets.dit, nets.vae, nets.t5, nets.clip, nets.wav2vec):
            _move(net, self._home)

    @classmethod
    def from_files(cls, files, *, device: str | torch.device = "cpu", dtype: torch.dtype | None = None,
                   offload: bool = False, model_configs: dict | None = None) -> "AnyTalkerPipeline":
        """Load every network from an :class:`~.files.AnyTalkerFiles` with the real loaders.

        ``dtype``: the DiT's (bf16 for inference; float32 is the reference path). The text encoder
        follows it on CUDA (the official T5 runs bf16), CLIP runs float16 on CUDA (official) and
        float32 on the CPU, the VAE and wav2vec2 always run float32 (§3.2, §10.6, §7.1).
        ``model_configs``: optional sizes for non-released checkpoints (e.g. the tiny test files):
        {"dit": AnyTalkerConfig fields} (the official JSON cannot carry them: it drops text_dim, and
        the audio widths are hard-wired, §3.1) and {"vae"|"t5"|"clip": config} for the encoder loaders.
        """
        from .audio import load_wav2vec2
        from .checkpoint import load_anytalker_dit
        from .config import AnyTalkerConfig
        from .image_encoder import load_wan_clip
        from .text_encoder import load_umt5
        from .vae import load_wan_vae

        dev = torch.device(device)
        dtype = dtype or (torch.bfloat16 if dev.type == "cuda" else torch.float32)
        home = torch.device("cpu") if offload else dev
        cfgs = model_configs or {}
        t5_dtype = dtype if dev.type == "cuda" else torch.float32
        clip_dtype = torch.float16 if dev.type == "cuda" else torch.float32
        dit_config = AnyTalkerConfig(**cfgs["dit"]) if cfgs.get("dit") else files.dit_config
        dit = load_anytalker_dit(files.dit, dit_config, device=home, dtype=dtype)
        vae = load_wan_vae(files.vae, device=home, dtype=torch.float32, config=cfgs.get("vae"))
        t5 = load_umt5(files.t5, files.tokenizer_dir, device=home, dtype=t5_dtype, config=cfgs.get("t5"))
        clip = load_wan_clip(files.clip, device=home, dtype=clip_dtype, config=cfgs.get("clip"))
        wav2vec = load_wav2vec2(files.wav2vec_dir, device=home, dtype=torch.float32)
        do_normalize = True
        pre = Path(files.wav2vec_dir) / "preprocessor_config.json"
        if pre.is_file():
            do_normalize = bool(json.loads(pre.read_text()).get("do_normalize", True))
        return cls(Networks(dit, vae, t5, clip, wav2vec, do_normalize), device=dev, offload=offload)

    # ------------------------------------------------------------------ stages
    def _use(self, net: Any) -> None:
        if self.offload:
            _move(net, self.device)

    def _done(self, net: Any) -> None:
        if self.offload:
            _move(net, self._home)
            if self.device.type == "cuda":
                torch.cuda.empty_cache()

    @torch.no_grad()
    def encode_text(self, prompt: str, negative_prompt: str) -> tuple[torch.Tensor, torch.Tensor]:
        t5 = self.nets.t5
        self._use(t5)
        try:
            ctx, neg = t5([prompt])[0], t5([negative_prompt])[0]
            return ctx.to(self.device), neg.to(self.device)
        finally:
            self._done(t5)

    @torch.no_grad()
    def encode_images(self, img: torch.Tensor, crops_xyxy: np.ndarray) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Global CLIP tokens [1, 257, 1280] and one [1, 257, 1280] per face crop (§8.5)."""
        clip = self.nets.clip
        self._use(clip)
        try:
            whole = clip(img[None].to(self.device)).float()
            faces = [clip(img[None, :, y1:y2, x1:x2].to(self.device)).float() for x1, y1, x2, y2 in crops_xyxy]
            return whole, faces
        finally:
            self._done(clip)

    @torch.no_grad()
    def encode_reference(self, img: torch.Tensor, size_hw: tuple[int, int], num_frames: int) -> torch.Tensor:
        """VAE latent [16, f, h/8, w/8] of [bicubic resize of the image (no clamp), F-1 zero frames]."""
        from .vae import conditioning_clip

        clip_in = conditioning_clip(img, size_hw[0], size_hw[1], num_frames)[None]  # [1, 3, F, h, w]
        vae = self.nets.vae
        self._use(vae)
        try:
            return vae.encode(clip_in.to(self.device)).float()[0]
        finally:
            self._done(vae)

    @torch.no_grad()
    def audio_features(self, waves: Sequence[np.ndarray], num_frames: int) -> list[torch.Tensor]:
        """Per track [F, 5, 12, 768] (pad mode: each track padded to the shared F, §7.1/§7.2)."""
        model = self.nets.wav2vec
        self._use(model)
        try:
            out = []
            for wave in waves:
                feats, _ = wav2vec_features(wave, model, num_frames=num_frames, do_normalize=self.nets.do_normalize)
                out.append(feats[:num_frames].to(self.device))
            return out
        finally:
            self._done(model)

    @torch.no_grad()
    def decode(self, latent: torch.Tensor) -> np.ndarray:
        vae = self.nets.vae
        self._use(vae)
        try:
            # chunked over time with the causal cache (vae.py); the video is collected on the CPU
            return to_uint8(vae.decode(latent[None].to(self.device, torch.float32), output_device="cpu")[0])
        finally:
            self._done(vae)

    # ------------------------------------------------------------------ one clip
    def generate(self, rgb: np.ndarray, waves: Sequence[np.ndarray], boxes_xyxy: np.ndarray, *, num_frames: int,
                 prompt: str = "", negative_prompt: str | None = None, size: str = "832*480", seed: int = 0,
                 steps: int = sampling.DEFAULT_STEPS, guidance: float = sampling.DEFAULT_GUIDANCE,
                 shift: float | None = None, batch_cfg: bool = True) -> Result:
        """One clip: ``rgb`` the reference image (uint8 HWC, original size), ``waves`` one 16 kHz
        mono float32 track per person (left to right), ``boxes_xyxy`` one face box per person in
        the same order (image pixels), ``num_frames`` = F (4n+1)."""
        n = len(waves)
        if n < 1 or len(boxes_xyxy) != n:
            raise ValueError(f"{n} audio tracks and {len(boxes_xyxy)} face boxes: need one box per track")
        shapes.latent_frames(num_frames)  # 4n+1 check
        if num_frames > MAX_FRAMES:
            raise ValueError(f"{num_frames} frames > {MAX_FRAMES}: beyond the DiT's 1024 latent positions")
        t_start = time.perf_counter()
        timings: dict[str, float] = {}
        mark = [time.perf_counter()]

        def lap(name: str) -> None:
            now = time.perf_counter()
            timings[name] = round(now - mark[0], 3)
            mark[0] = now

        img_hw = rgb.shape[:2]
        h, w = shapes.output_size(img_hw[0], img_hw[1], shapes.parse_size(size))
        lat_hw = shapes.latent_size(h, w)
        shift = sample_shift_for_size(size) if shift is None else float(shift)
        neg = NEGATIVE_PROMPT if negative_prompt is None else negative_prompt
        img = image_tensor(rgb)

        context, context_null = self.encode_text(prompt, neg)
        lap("text")
        fm = build_face_masks(np.asarray(boxes_xyxy, dtype=np.float32), n, img_hw, lat_hw, num_frames)
        clip_fea, face_tokens = self.encode_images(img, fm.crop_boxes_xyxy)
        lap("clip")
        latent_ref = self.encode_reference(img, (h, w), num_frames)
        lap("vae_encode")
        y = torch.cat([fm.y_mask.to(self.device), latent_ref.to(self.device)], dim=0)
        audio = self.audio_features(waves, num_frames)
        lap("audio")

        cond = sampling.Conditioning(context, context_null, clip_fea, y, audio, face_tokens,
                                     [m.to(self.device) for m in fm.dit_face_masks()])
        noise = sampling.initial_noise((16, *y.shape[1:]), seed, self.device)
        step_seconds: list[float] = []
        dit = self.nets.dit
        self._use(dit)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        try:
            latent = sampling.sample(dit, noise, cond, steps=steps, shift=shift, guidance=guidance,
                                     batch_cfg=batch_cfg, on_step=lambda i, t, s: step_seconds.append(round(s, 4)))
        finally:
            self._done(dit)
        peak = torch.cuda.max_memory_allocated(self.device) if self.device.type == "cuda" else None
        lap("sampling")
        frames = self.decode(latent)
        lap("vae_decode")
        if frames.shape[0] != num_frames:
            raise RuntimeError(f"VAE decoded {frames.shape[0]} frames, expected {num_frames}")
        info = {
            "frames": num_frames, "latent_frames": int(y.shape[1]), "height": h, "width": w,
            "latent_size": list(lat_hw), "steps": steps, "guidance": guidance, "shift": shift, "size": size,
            "batch_cfg": batch_cfg, "negative_prompt": "official" if negative_prompt is None else "given",
            "face_boxes_xyxy": np.asarray(boxes_xyxy, dtype=float).round(2).tolist(),
            "square_boxes_xywh": fm.bboxes_xywh.astype(float).round(2).tolist(),
            "clip_crops_xyxy": fm.crop_boxes_xyxy.tolist(),
            "text_tokens": [int(context.shape[0]), int(context_null.shape[0])],
            "seconds": {**timings, "total": round(time.perf_counter() - t_start, 3)},
            "seconds_per_step": step_seconds,
            "peak_gpu_memory_sampling_bytes": peak,
            "device": str(self.device), "offload": self.offload, "dit_dtype": str(self.nets.dit.dtype),
        }
        return Result(frames, info)


def load_waves(paths: Sequence[str | Path]) -> list[np.ndarray]:
    """Each track decoded and resampled to 16 kHz mono float32 (§7.1 steps 1 and 3: the official
    ffmpeg resample then librosa load, channels averaged)."""
    from interactive_eyes.media.audio import load_audio

    return [np.asarray(load_audio(p, AUDIO_SAMPLE_RATE, mono=True), dtype=np.float32).reshape(-1) for p in paths]
