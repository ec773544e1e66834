"""``ie-bench env``: versions, devices and paths, for bug reports and results provenance."""

from __future__ import annotations

import click

from interactive_eyes.app.cmd_common import EPILOG


def collect_environment(data_root: str | None = None) -> dict:
    """What ie-bench runs on: versions of the numeric stack, CUDA devices, data and cache paths."""
    import importlib.metadata as md
    import platform
    import sys

    from interactive_eyes import __version__
    from interactive_eyes.data.paths import cache_home, data_root as resolve_root

    def version(dist: str) -> str | None:
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            return None

    env = {
        "ie_bench": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": {
            name: version(name)
            # ai-edge-litert: the LiteRT interpreter that runs the current MediaPipe face models
            for name in ("torch", "torchvision", "numpy", "scipy", "mediapipe", "ai-edge-litert", "av",
                         "opencv-contrib-python", "pandas", "pytorch-fid", "python_speech_features", "silero-vad",
                         "onnxruntime", "dlib-bin", "transformers", "diffusers")
        },
        "cuda": {"available": False, "devices": []},
    }
    try:
        import torch

        if torch.cuda.is_available():
            env["cuda"] = {
                "available": True,
                "version": torch.version.cuda,
                "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
            }
    except ImportError:
        pass
    root = resolve_root(data_root)
    cache = cache_home()
    env["paths"] = {
        "data_root": {"path": str(root), "exists": root.is_dir()},
        "cache_home": {"path": str(cache), "exists": cache.is_dir()},
        "weights": {"path": str(cache / "weights"), "exists": (cache / "weights").is_dir()},
    }
    return env


@click.command("env", epilog=EPILOG)
@click.option("--root", type=click.Path(file_okay=False), help="Data root (default: $IE_BENCH_DATA or the cache).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def env(root, as_json):
    """Show ie-bench, Python, torch, mediapipe versions, CUDA devices and data/cache paths."""
    import json

    info = collect_environment(root)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"ie-bench     {info['ie_bench']}")
    click.echo(f"python       {info['python']} ({info['platform']})")
    for name, v in info["packages"].items():
        click.echo(f"{name:<22} {v or 'not installed'}")
    cuda = info["cuda"]
    click.echo("cuda         " + (", ".join(cuda["devices"]) if cuda["available"] else "no CUDA device"))
    for key, p in info["paths"].items():
        click.echo(f"{key:<12} {p['path']} ({'present' if p['exists'] else 'missing'})")
