"""Optional vocal separation before wav2vec2: the MDX-Net ONNX model Kim_Vocal_2 (§7.1 step 2).

The official pipeline runs audio-separator's ``Separator`` with ``Kim_Vocal_2.onnx`` on every
16 kHz track, keeps the "Vocals" stem and resamples it to 16 kHz again. ie-bench does this only
with ``--param vocal_separation=true`` (off by default: the benchmark tracks are clean speech).
audio-separator itself is not used (it needs an ffmpeg binary and numpy>=2); this module runs the
same kind of model directly with onnxruntime:

1. the 16 kHz track, channels kept (mono is copied to both channels: the model is stereo),
   resampled to 44.1 kHz (``scipy.signal.resample_poly``, 441/160);
2. cut into segments of ``SEGMENT`` samples, a quarter of each overlapping the next, with at
   least ``TRIM`` zeros before and after the track (so no sample of it sits at the border a
   centred STFT mirrors);
3. per segment: STFT (n_fft 7680, hop 1024, periodic Hann) -> the lowest ``DIM_F`` bins as the
   4 channels [left re, left im, right re, right im] of a [batch, 4, 3072, 256] tensor -> the ONNX
   model (it predicts the vocal stem's spectrogram) -> bins above ``DIM_F`` set to zero -> inverse
   STFT;
4. weighted overlap-add of the segments (window ``ola_window``, divided by the summed windows),
   times ``COMPENSATE``, back to 16 kHz, cut to the input's length exactly.

Every level change after step 1 (``COMPENSATE``, the cache's peak scaling) is a constant gain per
track, which wav2vec2's normalisation (§7.1 step 4, zero mean and unit variance per clip) removes.

The separated tracks are cached as 16-bit stereo WAV files ``<stem>_<key>_(Vocals)_Kim_Vocal_2-16k.wav``
in ``audio_preprocess/`` of the run folder (the official cache folder, spec/baselines.md §2.5).
``key`` digests the decoded samples and the model's SHA-256, so a changed track or model never
reuses a stale file (the official names do, spec/baselines.md §2.6 item 3).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from math import gcd
from pathlib import Path
from typing import Sequence

import numpy as np

from .audio import AUDIO_SAMPLE_RATE

# The published MDX-Net parameters of Kim_Vocal_2 (UVR model data: mdx_dim_f_set 3072, mdx_dim_t_set
# 8, mdx_n_fft_scale_set 7680, compensate 1.009, primary stem "Vocals"); 44.1 kHz and hop 1024 are
# those of every MDX-Net model.
MODEL_RATE = 44100
N_FFT = 7680
HOP = 1024
N_BINS = N_FFT // 2 + 1  # 3841 bins of the one-sided STFT
DIM_F = 3072  # bins the model sees: up to 3072 * 44100 / 7680 = 17.64 kHz
DIM_T = 2 ** 8  # frames per segment (mdx_dim_t_set is the exponent)
COMPENSATE = 1.009  # the model's output gain correction
STEM = "Vocals"
# A centred STFT of L samples has 1 + L // HOP frames: DIM_T frames <=> L = HOP * (DIM_T - 1)
SEGMENT = HOP * (DIM_T - 1)  # 261120 samples, 5.92 s at 44.1 kHz
TRIM = N_FFT // 2  # the centred STFT's mirrored border: 3840 samples of zeros before the track
OVERLAP = 0.25  # of a segment shared with the next (audio-separator's default MDX overlap)
STEP = SEGMENT - int(round(OVERLAP * SEGMENT))  # 195840
BATCH = 4  # segments per ONNX call when its batch axis is free (4 x 12.6 MB of float32 input)
GROUP = 8  # segments per STFT / model / inverse STFT pass (bounds memory: ~0.5 GB, any length)
CACHE_DIR = "audio_preprocess"
CACHE_VERSION = "1"  # part of the cache key: bump when this algorithm's output changes


class SeparatorModelError(FileNotFoundError):
    """The separator model is missing or not usable; ``str()`` is one line naming the file. A
    FileNotFoundError so that ``ie-bench run`` reports it as a model-file problem (exit 3), like
    ``files.MissingFilesError``, before any clip."""


def ola_window(n: int) -> np.ndarray:
    """Hann window sampled between the usual points, sin^2(pi (i + 1/2) / n): symmetric and never
    zero, so the overlap-add's division by the summed windows is defined at every sample."""
    return np.sin(np.pi * (np.arange(n) + 0.5) / n) ** 2


def _check_dims(path: Path, what: str, shape) -> None:
    expected = (None, 4, DIM_F, DIM_T)
    dims = list(shape or [])
    fixed_ok = len(dims) == 4 and all(not isinstance(d, int) or e is None or d == e for d, e in zip(dims, expected))
    if not fixed_ok:
        raise SeparatorModelError(f"{path}: not an MDX-Net model for this separator: its {what} shape is {dims}, "
                                  f"expected [batch, 4, {DIM_F}, {DIM_T}] (Kim_Vocal_2)")


class MdxModel:
    """An MDX-Net spectrogram model in an ONNX file, run with onnxruntime: on CUDA when ``device``
    is ``"cuda"`` and this onnxruntime has that provider, else on the CPU (``provider`` says which).
    ``threads``: onnxruntime's intra-op threads (default: its own choice)."""

    def __init__(self, path: str | os.PathLike, *, device: str = "cpu", threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise ImportError("vocal_separation needs onnxruntime: pip install 'ie-bench[anytalker]'") from None
        self.path = Path(path)
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = int(threads)
        providers = ["CPUExecutionProvider"]
        if str(device).startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(os.fspath(self.path), sess_options=opts, providers=providers)
        except Exception as exc:  # onnxruntime raises its own (InvalidProtobuf, NoSuchFile, ...) classes
            raise SeparatorModelError(f"{self.path}: onnxruntime cannot load it ({' '.join(str(exc).split())[:200]})") \
                from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) < 1:
            raise SeparatorModelError(f"{self.path}: expected one input and an output, found {len(inputs)} input(s) "
                                      f"and {len(outputs)} output(s)")
        _check_dims(self.path, "input", inputs[0].shape)
        _check_dims(self.path, "output", outputs[0].shape)
        self.input_name = inputs[0].name
        batch = inputs[0].shape[0]
        self.fixed_batch = batch if isinstance(batch, int) else None
        self.provider = self.session.get_providers()[0]

    def __call__(self, spec: np.ndarray) -> np.ndarray:
        """[n, 4, DIM_F, DIM_T] float32 -> the model's [n, 4, DIM_F, DIM_T], in batches."""
        size = self.fixed_batch or BATCH
        out = []
        for i in range(0, len(spec), size):
            part = spec[i:i + size]
            n = len(part)
            if self.fixed_batch and n < size:  # a fixed batch axis: fill the last call with zeros
                part = np.concatenate([part, np.zeros((size - n, *part.shape[1:]), np.float32)])
            pred = self.session.run(None, {self.input_name: np.ascontiguousarray(part, dtype=np.float32)})[0]
            if pred.shape != part.shape:
                raise SeparatorModelError(f"{self.path}: the model returned shape {list(pred.shape)} for input "
                                          f"{list(part.shape)}")
            out.append(pred[:n])
        return np.concatenate(out).astype(np.float32, copy=False)


def _stft(x):
    """[m, SEGMENT] float32 tensor -> [m, N_BINS, DIM_T] complex (centred, periodic Hann)."""
    import torch

    win = torch.hann_window(N_FFT, periodic=True, dtype=torch.float32)
    return torch.stft(x, N_FFT, HOP, window=win, center=True, return_complex=True)


def _istft(z):
    import torch

    win = torch.hann_window(N_FFT, periodic=True, dtype=torch.float32)
    return torch.istft(z, N_FFT, HOP, window=win, center=True, length=SEGMENT)


def _segments_through(segs: np.ndarray, model) -> np.ndarray:
    """[m, 2, SEGMENT] float32 -> the model's stem [m, 2, SEGMENT] (step 3 of the module doc)."""
    import torch

    m = len(segs)
    z = _stft(torch.from_numpy(np.ascontiguousarray(segs).reshape(2 * m, SEGMENT)))  # [2m, N_BINS, DIM_T]
    ri = torch.view_as_real(z).permute(0, 3, 1, 2)  # [2m, 2 (re, im), N_BINS, DIM_T]
    spec = ri.reshape(m, 4, N_BINS, DIM_T)[:, :, :DIM_F].contiguous().numpy()  # [L re, L im, R re, R im]
    pred = torch.from_numpy(model(spec)).reshape(2 * m, 2, DIM_F, DIM_T)
    full = torch.zeros(2 * m, 2, N_BINS, DIM_T, dtype=torch.float32)
    full[:, :, :DIM_F] = pred  # the bins above DIM_F are zero
    return _istft(torch.view_as_complex(full.permute(0, 2, 3, 1).contiguous())).numpy().reshape(m, 2, SEGMENT)


def separate_model_rate(stereo: np.ndarray, model) -> np.ndarray:
    """The vocal stem of a [2, n] signal at 44.1 kHz: [2, n] float32 (steps 2-4 of the module doc).
    ``model``: [m, 4, DIM_F, DIM_T] -> [m, 4, DIM_F, DIM_T] (an :class:`MdxModel`). Segments go
    through in groups of ``GROUP``, so memory does not grow with the track's length."""
    x = np.asarray(stereo, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] != 2:
        raise ValueError(f"separate_model_rate wants [2, n] samples, got shape {list(x.shape)}")
    n = x.shape[1]
    k = max(1, -(-(TRIM + n + TRIM - SEGMENT) // STEP) + 1)  # segments so that TRIM zeros follow the end
    padded = np.zeros((2, (k - 1) * STEP + SEGMENT), np.float32)
    padded[:, TRIM:TRIM + n] = x
    w = ola_window(SEGMENT)
    acc = np.zeros(padded.shape, np.float64)
    weight = np.zeros(padded.shape[1], np.float64)
    for g in range(0, k, GROUP):
        idx = range(g, min(k, g + GROUP))
        y = _segments_through(np.stack([padded[:, i * STEP:i * STEP + SEGMENT] for i in idx]), model)
        for j, i in enumerate(idx):
            acc[:, i * STEP:i * STEP + SEGMENT] += y[j] * w
            weight[i * STEP:i * STEP + SEGMENT] += w
    return (acc[:, TRIM:TRIM + n] / weight[TRIM:TRIM + n] * COMPENSATE).astype(np.float32)


def _resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    from scipy.signal import resample_poly

    g = gcd(rate_in, rate_out)
    return resample_poly(x, rate_out // g, rate_in // g, axis=-1)


def separate(wave: np.ndarray, model, rate: int = AUDIO_SAMPLE_RATE) -> np.ndarray:
    """The vocal stem of a track at ``rate``: ``wave`` [n] (mono) or [n, channels <= 2] -> [n, 2]
    float32 at ``rate`` (the model is stereo, as the official separator's output)."""
    x = np.asarray(wave, dtype=np.float32)
    x = x[:, None] if x.ndim == 1 else x
    if x.ndim != 2 or x.shape[1] not in (1, 2):
        raise ValueError(f"vocal separation takes mono or stereo audio, got shape {list(np.shape(wave))}")
    n = x.shape[0]
    stereo = np.repeat(x.T, 2, axis=0) if x.shape[1] == 1 else x.T  # [2, n]
    up = _resample(stereo, rate, MODEL_RATE).astype(np.float32)
    down = _resample(separate_model_rate(up, model), MODEL_RATE, rate)
    out = np.zeros((2, n), np.float32)
    m = min(n, down.shape[1])  # ceil(ceil(n 441/160) 160/441) is n or n + 1
    out[:, :m] = down[:, :m]
    return out.T.copy()


class VocalSeparator:
    """Kim_Vocal_2 on benchmark tracks, with the per-track cache of the module docstring."""

    def __init__(self, model_path: str | os.PathLike, *, device: str = "cpu", threads: int | None = None):
        from interactive_eyes.weights import file_sha256

        self.model = MdxModel(model_path, device=device, threads=threads)
        self.sha256 = file_sha256(self.model.path)

    def describe(self) -> dict:
        return {"model": "Kim_Vocal_2 (MDX-Net)", "path": str(self.model.path), "sha256": self.sha256,
                "provider": self.model.provider, "stem": STEM}

    def cache_path(self, audio_path: str | os.PathLike, samples: np.ndarray, cache_dir: Path) -> Path:
        h = hashlib.sha256(f"{CACHE_VERSION}|{self.sha256}|{samples.shape}|".encode())
        h.update(np.ascontiguousarray(samples, dtype=np.float32).tobytes())
        stem = Path(audio_path).name.split(".")[0]  # the official stem: the name cut at its first dot
        return Path(cache_dir) / f"{stem}_{h.hexdigest()[:16]}_({STEM})_Kim_Vocal_2-16k.wav"

    def track(self, audio_path: str | os.PathLike, cache_dir: str | os.PathLike) -> tuple[np.ndarray, Path, bool]:
        """The separated track as 16 kHz mono float32 (channels averaged, §7.1 step 3), the cache
        file and whether it was already there."""
        from interactive_eyes.media.audio import load_audio, write_wav

        samples = load_audio(audio_path, AUDIO_SAMPLE_RATE, mono=False)  # §7.1 step 1: channels kept
        target = self.cache_path(audio_path, samples, Path(cache_dir))
        reused = target.is_file()
        if not reused:
            vocals = separate(samples, self.model)
            peak = float(np.abs(vocals).max(initial=0.0))
            if peak > 32767 / 32768:  # 16-bit PCM would clip: scale the track down (a gain, see above)
                vocals = vocals * (32767 / 32768 / peak)
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=".wav")
            os.close(fd)
            try:
                write_wav(tmp, vocals, AUDIO_SAMPLE_RATE)
                os.replace(tmp, target)  # atomic: parallel workers or a killed run leave no half file
            finally:
                Path(tmp).unlink(missing_ok=True)
        wave = load_audio(target, AUDIO_SAMPLE_RATE, mono=True)
        return np.asarray(wave, dtype=np.float32).reshape(-1), target, reused

    def tracks(self, paths: Sequence[str | os.PathLike], cache_dir: str | os.PathLike) -> tuple[list, list[dict]]:
        waves, records = [], []
        for p in paths:
            wave, cached, reused = self.track(p, cache_dir)
            waves.append(wave)
            records.append({"audio": str(p), "vocals": str(cached), "reused": reused})
        return waves, records


def locate_model(ckpt_dir: str | os.PathLike | None = None) -> Path:
    """Kim_Vocal_2.onnx: ``$IE_BENCH_WEIGHT_KIM_VOCAL_2``, else ``<ckpt_dir>/vocal_separator/`` (the
    official layout) when it is there, else the registry's cache (downloaded unless offline; offline
    and missing: the registry's one-line ``WeightsMissingError``, exit 3)."""
    from interactive_eyes.weights import KIM_VOCAL_2, WeightsError, WeightsMissingError, resolve, user_path

    from .files import _expected

    given = None
    if user_path(KIM_VOCAL_2) is None and ckpt_dir:
        candidate = _expected(KIM_VOCAL_2, Path(ckpt_dir).expanduser())
        given = candidate if candidate.is_file() else None
    try:
        return resolve(KIM_VOCAL_2, path=given)
    except WeightsMissingError as exc:
        if ckpt_dir and given is None and user_path(KIM_VOCAL_2) is None:
            where = _expected(KIM_VOCAL_2, Path(ckpt_dir).expanduser())
            raise type(exc)(f"{exc} (not in ckpt_dir either: {where})") from None
        raise
    except WeightsError as exc:  # a corrupt file: a model-file problem like a missing one
        raise SeparatorModelError(str(exc)) from None
