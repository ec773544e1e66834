"""AnyTalker DiT: half-precision accuracy against the golden vectors, and forward speed.

    python benchmarks/anytalker_dit.py                    # everything, on CUDA when present
    python benchmarks/anytalker_dit.py --device cpu       # tiny sizes, runs anywhere
    python benchmarks/anytalker_dit.py --size 14B --iters 2 --skip-golden

1. Golden check: the tiny AF and legacy DiTs of the golden folder ($IE_BENCH_GOLDEN_DIR, else
   $IE_BENCH_TEST_DATA/../golden/anytalker, else ../shared/golden/anytalker next to the repo) run
   on the device in float32 (TF32 off) and in --dtype (bf16 by default); prints the max abs error
   against the fp32 CPU golden outputs over every case (1-3 identities, cond and uncond).
2. Speed: a DiT of --size (1.3B on CUDA, a tiny one on CPU) with random weights in --dtype,
   at --width x --height, --frames frames, --identities identities, 257 CLIP / face tokens, a
   512-token text context. Prints seconds per DiT forward and per sampling step (two forwards:
   cond + uncond, §10.2), peak memory, and — for the AF variant — both ways of applying the
   temporal audio mask (grouped per latent frame vs an explicit boolean mask).

--json PATH also writes every figure to a JSON file.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
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

OVERRIDE_FIELDS = {  # golden `_test_only_overrides` prose keys -> config fields
    "audio blocks": "audio_blocks", "audio channels": "audio_channels",
    "audio context_tokens": "audio_context_tokens", "audio intermediate_dim": "audio_intermediate_dim",
    "audio window": "audio_window", "clip_dim": "clip_dim",
}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def golden_dir(arg: str | None) -> Path | None:
    cands = [arg, os.environ.get("IE_BENCH_GOLDEN_DIR")]
    if os.environ.get("IE_BENCH_TEST_DATA"):
        cands.append(os.path.join(os.environ["IE_BENCH_TEST_DATA"], "..", "golden", "anytalker"))
    cands += [str(REPO.parent / "shared" / "golden" / "anytalker"), str(REPO / "shared" / "golden" / "anytalker")]
    for c in cands:
        if c and Path(c).is_dir() and (Path(c) / "tiny_configs.json").exists():
            return Path(c).resolve()
    return None


# --------------------------------------------------------------------------- golden check
def golden_check(gdir: Path, device: torch.device, dtypes: list[torch.dtype]) -> dict:
    from safetensors.torch import load_file

    results = {}
    for name in ("dit_af_tiny", "dit_legacy_tiny"):
        path = gdir / f"{name}.safetensors"
        if not path.exists():
            continue
        g = load_file(str(path))
        data = json.loads((gdir / f"{name}.config.json").read_text())
        over = {OVERRIDE_FIELDS[k.split(" (")[0]]: v for k, v in data.get("_test_only_overrides", {}).items()}
        cfg = at.AnyTalkerConfig.from_json_fields(data, **over)
        weights = {k[8:]: v for k, v in g.items() if k.startswith("weights.")}
        meta = data.get("_inputs", {})
        ids = sorted({int(k.split(".")[1][1:]) for k in g if k.startswith("out.n")})
        for dtype in dtypes:
            model = at.load_anytalker_dit(weights, cfg, device=device, dtype=dtype)
            worst, worst_rel = 0.0, 0.0
            for n in ids:
                for kind in ("cond", "uncond"):
                    audio = [g[f"in.audio.{i}"] for i in range(n)]
                    with torch.no_grad():
                        out = model([g["in.x"]], g["in.t"], [g["in.context" if kind == "cond" else "in.context_null"]],
                                    g["in.clip_fea"], [g["in.y"]],
                                    audio if kind == "cond" else [torch.zeros_like(a) for a in audio],
                                    [g[f"in.ref_face.{i}"] for i in range(n)],
                                    [g[f"in.face_mask.{i}"] for i in range(n)], seq_len=meta.get("seq_len"))[0]
                    ref = g[f"out.n{n}.{kind}"]
                    err = float((out.cpu().double() - ref.double()).abs().max())
                    worst = max(worst, err)
                    worst_rel = max(worst_rel, err / float(ref.abs().max()))
            key = f"{name}.{str(dtype).replace('torch.', '')}.{device.type}"
            results[key] = {"max_abs_err": worst, "max_abs_err_rel_to_max_ref": worst_rel, "cases": 2 * len(ids)}
            print(f"golden {name:16s} {str(dtype).replace('torch.', ''):8s} on {device.type}: "
                  f"max|err| = {worst:.3e}  (= {worst_rel:.2e} of max|ref|) over {2 * len(ids)} outputs")
    return results


# --------------------------------------------------------------------------- speed
def size_config(size: str) -> at.AnyTalkerConfig:
    if size == "1.3B":
        return at.AnyTalkerConfig.af_1_3b()
    if size == "14B":
        return at.AnyTalkerConfig.legacy_14b()
    if size in ("tiny", "tiny-legacy"):
        return at.AnyTalkerConfig(variant="legacy" if size == "tiny-legacy" else "af", dim=128, ffn_dim=256,
                                  num_heads=4, num_layers=2, text_dim=64, text_len=16, clip_dim=32,
                                  audio_blocks=3, audio_channels=16, audio_intermediate_dim=32,
                                  audio_context_tokens=4, audio_output_dim=24)
    raise SystemExit(f"unknown --size {size}")


@torch.no_grad()
def random_model(cfg: at.AnyTalkerConfig, device: torch.device, dtype: torch.dtype) -> at.AnyTalkerDiT:
    """Random weights, generated directly on the device (N(0, 1/fan_in) linears, unit norms)."""
    with torch.device("meta"):
        model = at.AnyTalkerDiT(cfg).to(dtype)  # cast on meta: never materialise fp32 (84 GB at 14B)
    model = model.to_empty(device=device)
    gen = torch.Generator(device=device).manual_seed(0)
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if name == "modulation":
                p.normal_(0, 1 / math.sqrt(cfg.dim), generator=gen)
            elif isinstance(module, (torch.nn.Linear, torch.nn.Conv3d)) and name == "weight":
                p.normal_(0, 1 / math.sqrt(p[0].numel()), generator=gen)
            elif name == "weight":  # LayerNorm / RMSNorm scales
                p.fill_(1)
            else:  # biases
                p.zero_()
    return model.eval().requires_grad_(False)


def speed(cfg: at.AnyTalkerConfig, device: torch.device, dtype: torch.dtype, width: int, height: int,
          frames: int, identities: int, warmup: int, iters: int, afca_modes: list[str]) -> dict:
    if (frames - 1) % 4 or height % 16 or width % 16:
        raise SystemExit("frames must be 4n+1, width/height multiples of 16")
    f, lat_h, lat_w = (frames - 1) // 4 + 1, height // 8, width // 8
    n_tok = f * (lat_h // 2) * (lat_w // 2)
    model = random_model(cfg, device, dtype)
    gen = torch.Generator(device=device).manual_seed(1)

    def rnd(*shape):
        return torch.randn(*shape, generator=gen, device=device, dtype=dtype)

    inputs = dict(
        x=[rnd(16, f, lat_h, lat_w)], t=torch.tensor([999], device=device), context=[rnd(cfg.text_len, cfg.text_dim)],
        clip_fea=rnd(1, cfg.clip_tokens, cfg.clip_dim), y=[rnd(20, f, lat_h, lat_w)],
        audio=[rnd(frames, cfg.audio_window, cfg.audio_blocks, cfg.audio_channels) for _ in range(identities)],
        ref_faces=[rnd(1, cfg.clip_tokens, cfg.clip_dim) for _ in range(identities)],
        face_masks=[torch.rand(1, 1, f, lat_h // 2, lat_w // 2, generator=gen, device=device, dtype=dtype)
                    for _ in range(identities)],
    )
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    n_params = sum(p.numel() for p in model.parameters())
    label = (f"{cfg.variant} D={cfg.dim} x{cfg.num_layers} ({n_params / 1e9:.3f}B params) "
             f"{str(dtype).replace('torch.', '')} {device.type}")
    keys = (f"{cfg.clip_tokens} + {cfg.audio_context_tokens} face + audio keys per latent frame" if cfg.is_legacy
            else f"{cfg.clip_tokens + frames * cfg.audio_context_tokens} AFCA keys per identity")
    print(f"speed {label}: {width}x{height}, {frames} frames (f={f}), {identities} identities, "
          f"L = {n_tok} video tokens, {keys}")
    results = {}
    for mode in (afca_modes if not cfg.is_legacy else ["auto"]):
        model.afca_mode = mode
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        with torch.no_grad():
            for _ in range(warmup):
                model(**inputs)
            sync()
            times = []
            for _ in range(iters):
                t0 = time.perf_counter()
                out = model(**inputs)
                sync()
                times.append(time.perf_counter() - t0)
        per_fwd = sorted(times)[len(times) // 2]
        peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
        finite = bool(torch.isfinite(out).all())
        print(f"  afca={mode:7s}: {per_fwd:.3f} s/forward (median of {iters}; min {min(times):.3f}), "
              f"{2 * per_fwd:.3f} s/step with CFG, "
              + (f"peak {peak:.1f} GiB, " if peak is not None else "")
              + f"output finite: {finite}")
        results[mode] = {"s_per_forward": per_fwd, "s_per_step_cfg": 2 * per_fwd, "min_s": min(times),
                         "peak_gib": peak, "finite": finite}
    return {"label": label, "width": width, "height": height, "frames": frames, "identities": identities,
            "tokens": n_tok, "modes": results}


def flash_available(device: torch.device, dtype: torch.dtype) -> str:
    if device.type != "cuda" or dtype == torch.float32:
        return "n/a"
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        q = torch.randn(1, 2, 64, 128, device=device, dtype=dtype)
        with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
            torch.nn.functional.scaled_dot_product_attention(q, q, q)
        return "yes"
    except Exception as exc:  # noqa: BLE001 - report, do not fail
        return f"no ({type(exc).__name__})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", help="auto (cuda if available), cuda, cuda:1, cpu")
    ap.add_argument("--dtype", default="auto", choices=["auto", *DTYPES], help="low-precision dtype (auto: bf16)")
    ap.add_argument("--size", default="auto", choices=["auto", "1.3B", "14B", "tiny", "tiny-legacy"],
                    help="speed model (auto: 1.3B on CUDA, tiny elsewhere)")
    ap.add_argument("--width", type=int, default=None, help="pixels (default 832 full size, 96 tiny)")
    ap.add_argument("--height", type=int, default=None, help="pixels (default 448 full size, 64 tiny)")
    ap.add_argument("--frames", type=int, default=None, help="video frames, 4n+1 (default 81 full size, 9 tiny)")
    ap.add_argument("--identities", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--afca", default="auto,masked", help="AFCA temporal-mask modes to time, comma separated")
    ap.add_argument("--golden-dir", default=None)
    ap.add_argument("--skip-golden", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args()

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    dtype = DTYPES["bf16" if args.dtype == "auto" else args.dtype]
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 golden comparison without TF32 (golden README)
    torch.backends.cudnn.allow_tf32 = False
    report: dict = {"torch": torch.__version__, "device": str(device)}
    if device.type == "cuda":
        report["gpu"] = torch.cuda.get_device_name(device)
    print(f"torch {torch.__version__}, device {device}"
          + (f" ({report['gpu']})" if "gpu" in report else f" ({torch.get_num_threads()} threads)")
          + f", flash attention via SDPA for {str(dtype).replace('torch.', '')}: {flash_available(device, dtype)}")

    if not args.skip_golden:
        gdir = golden_dir(args.golden_dir)
        if gdir is None:
            print("golden: skipped (golden folder not found; set IE_BENCH_GOLDEN_DIR)")
        else:
            try:
                dts = [torch.float32] + ([dtype] if dtype != torch.float32 else [])
                report["golden"] = golden_check(gdir, device, dts)
            except ImportError as exc:
                print(f"golden: skipped ({exc})")

    if not args.skip_speed:
        size = args.size if args.size != "auto" else ("1.3B" if device.type == "cuda" else "tiny")
        full = size in ("1.3B", "14B")
        torch.backends.cuda.matmul.allow_tf32 = True  # irrelevant for bf16/fp16, realistic for fp32
        report["speed"] = speed(size_config(size), device, dtype,
                                args.width or (832 if full else 96), args.height or (448 if full else 64),
                                args.frames or (81 if full else 9), args.identities, args.warmup, args.iters,
                                [m.strip() for m in args.afca.split(",") if m.strip()])
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
        print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
