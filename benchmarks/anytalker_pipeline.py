"""AnyTalker pipeline: one denoising step at full size, and a whole clip with tiny weights.

    python benchmarks/anytalker_pipeline.py                 # on CUDA: 1.3B sizes, 832x448, 81 frames, 2 people
    python benchmarks/anytalker_pipeline.py --tiny          # anywhere (CPU): tiny sizes, same code path
    python benchmarks/anytalker_pipeline.py --json out.json

1. **Step**: the 1.3B DiT (``AnyTalkerConfig.af_1_3b()``, 1.90 B parameters) with random weights
   in --dtype (bf16), inputs of the real shapes at --width x --height (832x448: latent 56x104,
   1456 tokens per latent frame), --frames (81: 21 latent frames, L = 30576 tokens), --identities
   (2) with 257 face tokens each, 32 audio tokens per video frame, a 512-token text context. One
   guided step (cond + uncond, §10.2) both ways: batched in one DiT call, and two calls. Then the
   real-size Wan VAE (random weights, float32) decodes the 21 latent frames chunk by chunk. Prints
   seconds per step, peak GPU memory of each part (the DiT step is what must fit next to nothing
   else when the text encoder and the VAE are offloaded).
2. **Clip**: every network tiny (tests/baselines/anytalker/tiny_anytalker.py, files in the official
   formats, loaded by the real loaders), one whole clip through ``AnyTalkerPipeline.generate``
   (faces from the reference image, wav2vec2 on the real tracks, --clip-steps steps, decode):
   seconds per stage and per step.

Needs the shared data for part 2 (IE_BENCH_TEST_DATA, else ../shared/data next to the repo):
anytalker_examples/images/2p-0.png and the interact_11 tracks (cut to --clip-seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
try:
    from interactive_eyes.baselines import anytalker as at
except ImportError:  # not installed: import the folder directly
    sys.path.insert(0, str(REPO))
    import importlib

    at = importlib.import_module("baselines.anytalker")

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def data_dir() -> Path | None:
    for c in (os.environ.get("IE_BENCH_TEST_DATA"), str(REPO.parent / "shared" / "data")):
        if c and Path(c).is_dir():
            return Path(c).resolve()
    return None


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _peak(dev: torch.device) -> float | None:
    return round(torch.cuda.max_memory_allocated(dev) / 2**30, 2) if dev.type == "cuda" else None


def _reset(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)


# --------------------------------------------------------------------------- part 1: one step
def step_benchmark(args, dev: torch.device) -> dict:
    from interactive_eyes.baselines.anytalker.sampling import Conditioning, guided_velocity
    from interactive_eyes.baselines.anytalker.scheduler import make_unipc_scheduler
    from interactive_eyes.baselines.anytalker.shapes import latent_frames

    if args.tiny:
        cfg = at.AnyTalkerConfig(dim=64, ffn_dim=128, num_heads=2, num_layers=2, text_dim=32, clip_dim=32,
                                 audio_blocks=2, audio_channels=16, audio_intermediate_dim=16, audio_context_tokens=4)
    else:
        cfg = at.AnyTalkerConfig.af_1_3b()
    dtype = DTYPES[args.dtype]
    _reset(dev)
    torch.manual_seed(0)
    with torch.device(dev):
        dit = at.AnyTalkerDiT(cfg).to(dtype).eval().requires_grad_(False)
    n_params = sum(p.numel() for p in dit.parameters())
    # what the weights occupy once cast (the peak so far also counts the float32 construction)
    weights_gib = round(torch.cuda.memory_allocated(dev) / 2**30, 2) if dev.type == "cuda" else None
    f = latent_frames(args.frames)
    lat_h, lat_w = args.height // 8, args.width // 8
    g = torch.Generator(device=dev).manual_seed(1)

    def r(*s):
        return torch.randn(*s, generator=g, device=dev)

    n_id = args.identities
    masks = []
    for i in range(n_id):  # one face region per person, side by side
        m = torch.zeros(1, 1, f, lat_h // 2, lat_w // 2, device=dev)
        w = lat_w // 2 // n_id
        m[..., lat_h // 8: lat_h // 2 - lat_h // 8, i * w + w // 4: i * w + 3 * w // 4] = 1
        masks.append(m)
    cond = Conditioning(r(24, cfg.text_dim), r(120, cfg.text_dim), r(1, cfg.clip_tokens, cfg.clip_dim),
                        r(20, f, lat_h, lat_w),
                        [r(args.frames, cfg.audio_window, cfg.audio_blocks, cfg.audio_channels).to(dtype)
                         for _ in range(n_id)],
                        [r(1, cfg.clip_tokens, cfg.clip_dim) for _ in range(n_id)], masks)
    x = r(16, f, lat_h, lat_w)
    sched = make_unipc_scheduler(20, 3.0, device=dev)
    t = sched.timesteps[0]
    out: dict = {"config": "tiny" if args.tiny else "1.3B", "parameters": n_params, "dtype": args.dtype,
                 "size": f"{args.width}x{args.height}", "frames": args.frames, "latent_frames": f,
                 "tokens": f * (lat_h // 2) * (lat_w // 2), "identities": n_id, "dit_weights_gib": weights_gib}
    with torch.no_grad():
        for batch in (True, False):
            name = "batched" if batch else "two_calls"
            try:
                guided_velocity(dit, x, t, cond, 4.5, batch_cfg=batch)  # warm-up (kernels, allocator)
                _sync(dev)
                _reset(dev)
                times = []
                for _ in range(args.iters):
                    t0 = time.perf_counter()
                    v = guided_velocity(dit, x, t, cond, 4.5, batch_cfg=batch)
                    sched_x = sched.step(v[None], t, x[None], return_dict=False)[0]
                    _sync(dev)
                    times.append(time.perf_counter() - t0)
                    sched = make_unipc_scheduler(20, 3.0, device=dev)  # fresh solver state for the next timing
                del sched_x
                out[name] = {"seconds_per_step": round(min(times), 3), "peak_gib": _peak(dev)}
            except torch.OutOfMemoryError as exc:
                out[name] = {"error": f"out of memory ({' '.join(str(exc).split())[:120]})"}
                _reset(dev)
            print(f"step [{name}]: {out[name]}", flush=True)
    del dit
    _reset(dev)
    if not args.tiny or args.vae:
        out["vae_decode"] = vae_decode_benchmark(args, dev, f, lat_h, lat_w)
        print(f"vae decode: {out['vae_decode']}", flush=True)
    return out


def vae_decode_benchmark(args, dev, f, lat_h, lat_w) -> dict:
    from interactive_eyes.baselines.anytalker.vae import WAN_VAE_CONFIG, WanVAE, build_vae_model

    cfg = dict(WAN_VAE_CONFIG, dim=8) if args.tiny else WAN_VAE_CONFIG
    torch.manual_seed(0)
    vae = WanVAE(build_vae_model(cfg).eval()).to(dev)
    z = torch.randn(1, 16, f, lat_h, lat_w, device=dev)
    _reset(dev)
    t0 = time.perf_counter()
    with torch.no_grad():
        video = vae.decode(z, output_device="cpu")
    _sync(dev)
    return {"seconds": round(time.perf_counter() - t0, 2), "peak_gib": _peak(dev), "frames": int(video.shape[2])}


# --------------------------------------------------------------------------- part 2: a tiny clip
def clip_benchmark(args, dev: torch.device) -> dict:
    import numpy as np
    from PIL import Image

    from interactive_eyes.baselines.anytalker.faces import detect_faces
    from interactive_eyes.baselines.anytalker.files import locate
    from interactive_eyes.baselines.anytalker.pipeline import AnyTalkerPipeline, load_waves
    from interactive_eyes.baselines.anytalker.shapes import frame_count

    data = data_dir()
    if data is None:
        return {"skipped": "no shared data (set IE_BENCH_TEST_DATA)"}
    sys.path.insert(0, str(REPO / "tests" / "baselines" / "anytalker"))
    from tiny_anytalker import write_tiny_checkpoints

    with tempfile.TemporaryDirectory() as tmp:
        ck = write_tiny_checkpoints(Path(tmp) / "ckpt")
        files = locate(ck["root"])
        pipe = AnyTalkerPipeline.from_files(files, device=dev, dtype=DTYPES[args.dtype] if dev.type == "cuda" else None,
                                            model_configs=json.loads(Path(ck["model_configs"]).read_text()))
        rgb = np.asarray(Image.open(data / "anytalker_examples" / "images" / "2p-0.png").convert("RGB"))
        ie = data / "interactive_eyes"
        waves = load_waves([ie / "audio_left" / "interact_11_left.flac", ie / "audio_right" / "interact_11_right.flac"])
        waves = [w[: int(args.clip_seconds * 16000)] for w in waves]
        boxes = detect_faces(rgb, 2)
        _reset(dev)
        res = pipe.generate(rgb, waves, boxes, num_frames=frame_count(args.clip_seconds), prompt="Two people talk.",
                            size=args.clip_size, steps=args.clip_steps, seed=0)
    info = res.info
    return {"frames": info["frames"], "size": f"{info['width']}x{info['height']}", "seconds": info["seconds"],
            "seconds_per_step": info["seconds_per_step"], "peak_gib": _peak(dev)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiny", action="store_true", help="tiny DiT at a small size (runs on a CPU)")
    ap.add_argument("--device", default=None, help="default: cuda when present, else cpu")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    ap.add_argument("--width", type=int, default=None)
    ap.add_argument("--height", type=int, default=None)
    ap.add_argument("--frames", type=int, default=None, help="4n+1 video frames (default 81; 9 with --tiny)")
    ap.add_argument("--identities", type=int, default=2)
    ap.add_argument("--iters", type=int, default=2)
    ap.add_argument("--vae", action="store_true", help="also time a VAE decode with --tiny")
    ap.add_argument("--clip-seconds", type=float, default=2.0)
    ap.add_argument("--clip-steps", type=int, default=2)
    ap.add_argument("--clip-size", default="128*64", help="area budget of the tiny clip")
    ap.add_argument("--skip-clip", action="store_true")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 on a shared machine)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    dev = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if dev.type == "cpu" and not args.tiny:
        ap.error("the 1.3B step needs a GPU; use --tiny on a CPU")
    if args.threads:
        torch.set_num_threads(args.threads)
    args.width = args.width or (96 if args.tiny else 832)
    args.height = args.height or (64 if args.tiny else 448)
    args.frames = args.frames or (9 if args.tiny else 81)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    report = {"device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
              "torch": torch.__version__, "step": step_benchmark(args, dev)}
    if not args.skip_clip:
        report["clip"] = clip_benchmark(args, dev)
        print(f"tiny clip: {report['clip']}", flush=True)
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
