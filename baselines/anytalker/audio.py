"""Audio side of AnyTalker: the two audio projections and the wav2vec2 feature pipeline.

Section numbers (§) refer to ``shared/spec/anytalker-model.md``.

- :class:`AudioProjection` — ``audio_emb`` of the AF variant (1.3B), §5.6: one group of tokens per
  *video* frame, projected straight to the model width.
- :class:`LegacyAudioProjection` — ``audio_proj`` of the legacy variant (14B), §5.7: one group of
  tokens per *latent* frame, width ``audio_output_dim``; :func:`regroup_legacy_audio` builds its
  inputs from the per-frame windows.
- :func:`wav2vec_features` — §7.1 steps 4-9 on a 16 kHz mono waveform with a transformers
  ``Wav2Vec2Model`` (the only change to its forward pass is the linear interpolation of the
  convolutional features to the video frame count).

transformers is imported lazily (only :func:`load_wav2vec2` needs it).
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .layers import LayerNorm32

AUDIO_SAMPLE_RATE = 16000  # wav2vec2-base-960h input rate (§7.1 step 1)
AUDIO_FPS = 24  # video fps used for audio features and frame counting (§3.2)
NORMALIZE_EPS = 1e-7  # Wav2Vec2FeatureExtractor zero-mean / unit-variance epsilon (§7.1 step 4)
AUDIO_PROJ_LN_EPS = 1e-5  # torch default LayerNorm eps of audio_emb.norm / audio_proj.norm (§5.15)


class AudioProjection(nn.Module):
    """``audio_emb`` (AF variant, §5.6): per video frame, flatten the [window, layers, channels]
    block (window-major, then layer, then channel), ReLU(Lin) -> ReLU(Lin) -> Lin to
    ``context_tokens * output_dim``, reshape to tokens, LayerNorm(output_dim, eps 1e-5).

    Input [B, F, window, blocks, channels] (a 4-D input gets a batch axis of 1);
    output [B, F, context_tokens, output_dim].
    """

    def __init__(self, window: int = 5, blocks: int = 12, channels: int = 768,
                 intermediate_dim: int = 512, output_dim: int = 1536, context_tokens: int = 32) -> None:
        super().__init__()
        self.window, self.blocks, self.channels = window, blocks, channels
        self.context_tokens, self.output_dim = context_tokens, output_dim
        self.proj1 = nn.Linear(window * blocks * channels, intermediate_dim)
        self.proj2 = nn.Linear(intermediate_dim, intermediate_dim)
        self.proj3 = nn.Linear(intermediate_dim, context_tokens * output_dim)
        self.norm = LayerNorm32(output_dim, eps=AUDIO_PROJ_LN_EPS)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        if audio.ndim == 4:
            audio = audio.unsqueeze(0)
        b, frames = audio.shape[:2]
        h = audio.reshape(b, frames, -1).to(self.proj1.weight.dtype)
        h = F.relu(self.proj1(h))
        h = F.relu(self.proj2(h))
        h = self.proj3(h).view(b, frames, self.context_tokens, self.output_dim)
        return self.norm(h)


class LegacyAudioProjection(nn.Module):
    """``audio_proj`` (legacy variant, §5.7): the first video frame's window through ``proj1``,
    each later latent frame's 8-frame sequence through ``proj1_vf`` (both ReLU), concatenated
    along time, ReLU(proj2), proj3 to ``context_tokens x output_dim`` per latent frame, then an
    optional LayerNorm(output_dim, eps 1e-5).

    Inputs first [B, 1, window, blocks, channels] and latter [B, f-1, window_vf, blocks,
    channels]; output [B, f, context_tokens, output_dim].
    """

    def __init__(self, window: int = 5, window_vf: int = 8, blocks: int = 12, channels: int = 768,
                 intermediate_dim: int = 512, output_dim: int = 768, context_tokens: int = 32,
                 norm_output: bool = True) -> None:
        super().__init__()
        self.window, self.window_vf = window, window_vf
        self.context_tokens, self.output_dim = context_tokens, output_dim
        self.proj1 = nn.Linear(window * blocks * channels, intermediate_dim)
        self.proj1_vf = nn.Linear(window_vf * blocks * channels, intermediate_dim)
        self.proj2 = nn.Linear(intermediate_dim, intermediate_dim)
        self.proj3 = nn.Linear(intermediate_dim, context_tokens * output_dim)
        # absent (and absent from the state dict) when norm_output_audio is false (§4.2)
        self.norm = LayerNorm32(output_dim, eps=AUDIO_PROJ_LN_EPS) if norm_output else None

    def forward(self, first: torch.Tensor, latter: torch.Tensor) -> torch.Tensor:
        dtype = self.proj1.weight.dtype
        b = first.shape[0]
        h_first = F.relu(self.proj1(first.reshape(b, first.shape[1], -1).to(dtype)))
        h_latter = F.relu(self.proj1_vf(latter.reshape(b, latter.shape[1], -1).to(dtype)))
        h = torch.cat([h_first, h_latter], dim=1)
        h = F.relu(self.proj2(h))
        h = self.proj3(h).view(b, h.shape[1], self.context_tokens, self.output_dim)
        return self.norm(h) if self.norm is not None else h


def regroup_legacy_audio(audio: torch.Tensor, latent_frames: int, vae_scale: int = 4
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-video-frame windows [B, F, W, blocks, channels] -> the legacy projection's inputs (§5.7).

    first = frame 0's whole window [B, 1, W, ...]. Latent frame g >= 1 covers video frames
    vae_scale*(g-1)+1 .. vae_scale*g; its sequence is the first frame's window positions 0..c,
    the centres of the middle frames and the last frame's positions c..W-1 (c = W // 2), i.e.
    W + vae_scale - 1 consecutive video frames (8 for W = 5, vae_scale = 4).
    """
    if audio.ndim == 4:
        audio = audio.unsqueeze(0)
    b, frames, window = audio.shape[:3]
    need = vae_scale * (latent_frames - 1) + 1
    if frames < need:
        raise ValueError(f"legacy audio needs {need} video frames for {latent_frames} latent frames, got {frames}")
    c = window // 2
    first = audio[:, :1]
    groups = audio[:, 1:need].reshape(b, latent_frames - 1, vae_scale, *audio.shape[2:])
    latter = torch.cat([
        groups[:, :, 0, : c + 1],
        groups[:, :, 1:vae_scale - 1, c],
        groups[:, :, vae_scale - 1, c:],
    ], dim=2)
    return first, latter


# --------------------------------------------------------------------------- wav2vec2 features
def normalize_waveform(wave: np.ndarray | torch.Tensor) -> np.ndarray:
    """Wav2Vec2FeatureExtractor normalisation (§7.1 step 4): (x - mean) / sqrt(var + 1e-7) over
    the whole clip, population variance, in float32 numpy as the feature extractor does it."""
    x = np.asarray(wave.cpu().numpy() if isinstance(wave, torch.Tensor) else wave, dtype=np.float32)
    return ((x - x.mean()) / np.sqrt(x.var() + NORMALIZE_EPS)).astype(np.float32)


def audio_frame_count(num_samples: int, sampling_rate: int = AUDIO_SAMPLE_RATE, fps: float = AUDIO_FPS) -> int:
    """Video frames covered by an audio clip (§7.1 step 5): ceil(n / sr * fps)."""
    return int(math.ceil(num_samples / sampling_rate * fps))


def window_features(features: torch.Tensor, window: int = 5) -> torch.Tensor:
    """[N, ...] -> [N, window, ...]: frame k gets frames k-2..k+2 (for window 5), indices clamped
    to [0, N-1] (§7.1 step 9)."""
    n = features.shape[0]
    half = window // 2
    idx = torch.arange(n, device=features.device)[:, None] + torch.arange(-half, window - half, device=features.device)
    return features[idx.clamp_(0, n - 1)]


@torch.no_grad()
def wav2vec_features(
    waveform: np.ndarray | torch.Tensor,
    model: Any,
    *,
    num_frames: int | None = None,
    fps: float = AUDIO_FPS,
    sampling_rate: int = AUDIO_SAMPLE_RATE,
    do_normalize: bool = True,
    window: int = 5,
) -> tuple[torch.Tensor, int]:
    """Windowed wav2vec2 features of a mono waveform at 16 kHz (§7.1 steps 4-9).

    ``model`` is a transformers ``Wav2Vec2Model`` (eval mode). ``num_frames`` = F selects the
    "pad" mode (zero samples appended to the normalised waveform until the frame count is a
    multiple of F); None is the no-padding path of "concat" mode. Returns (features
    [audio_length, window, layers, width] float32 on the model's device, audio_length). The caller
    keeps the first F frames in pad mode and casts to the DiT dtype (§7.1 step 10).
    """
    wave = normalize_waveform(waveform) if do_normalize else np.asarray(waveform, dtype=np.float32)
    audio_length = audio_frame_count(len(wave), sampling_rate, fps)
    if num_frames is not None and audio_length % num_frames:
        pad_frames = num_frames - audio_length % num_frames
        # floor(16000 / 24) = 666 samples per frame, as in the official code (§7.1 step 6)
        wave = np.concatenate([wave, np.zeros(pad_frames * (sampling_rate // int(fps)), np.float32)])
        audio_length += pad_frames
    param = next(model.parameters())
    inputs = torch.from_numpy(wave).to(device=param.device, dtype=param.dtype)[None]
    hidden = _wav2vec_hidden_states(model, inputs, audio_length)
    feats = torch.stack(hidden, dim=2)[0].float()  # [audio_length, layers, width]
    return window_features(feats, window), audio_length


def _wav2vec_hidden_states(model: Any, inputs: torch.Tensor, audio_length: int) -> list[torch.Tensor]:
    """Run the transformers model with one change: the conv features [B, C, T] are linearly
    interpolated (aligned corners) to ``audio_length`` steps before the feature projection
    (§7.1 step 7). Returns the outputs of every transformer layer (hidden states 1..N, §7.1 step 8).

    Both changes are made with forward hooks, so transformers' own forward (feature projection,
    positional conv, encoder LN, layers) runs unmodified, whatever its version."""
    outputs: list[torch.Tensor] = []

    def interpolate(_mod, _inp, out):
        return F.interpolate(out, size=audio_length, mode="linear", align_corners=True)

    def record(_mod, _inp, out):
        outputs.append(out[0] if isinstance(out, tuple) else out)

    handles = [model.feature_extractor.register_forward_hook(interpolate)]
    handles += [layer.register_forward_hook(record) for layer in model.encoder.layers]
    try:
        model(inputs)
    finally:
        for h in handles:
            h.remove()
    if len(outputs) != len(model.encoder.layers):
        raise RuntimeError("wav2vec2: not every encoder layer ran (training-mode layerdrop?)")
    return outputs


def load_wav2vec2(path: str | os.PathLike, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32):
    """Load wav2vec2-base-960h (or any Wav2Vec2Model folder) offline, in eval mode (§7.1 step 7:
    the official pipeline runs it in float32)."""
    from transformers import Wav2Vec2Model

    model = Wav2Vec2Model.from_pretrained(os.fspath(path), local_files_only=True)
    return model.to(device=device, dtype=dtype).eval()


def audio_features_from_file(path: str | os.PathLike, model: Any, *, num_frames: int | None = None,
                             fps: float = AUDIO_FPS) -> tuple[torch.Tensor, int]:
    """Decode a file to 16 kHz mono and run :func:`wav2vec_features`. (The official pipeline also
    runs a vocal separator first, §7.1 step 2; that step is not part of this function.)"""
    from interactive_eyes.media.audio import load_audio

    wave = load_audio(path, AUDIO_SAMPLE_RATE, mono=True)
    return wav2vec_features(wave, model, num_frames=num_frames, fps=fps)
