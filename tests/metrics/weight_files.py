"""What the FID / KID / FVD / KVD tests share: random networks of the real architecture saved in the
real file format, and the registry entry pointed at such a file (its own SHA-256 and size), since
no real weights can be downloaded in tests.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import torch

from interactive_eyes import weights as W
from interactive_eyes.download import sha256_file


def random_fid_inception(path: Path, n_calibration: int) -> Path:
    """pytorch-fid's FID Inception with random weights, saved as a plain state dict (the real
    file's format and keys). BatchNorm statistics are calibrated on ``n_calibration`` noise images
    (cumulative average), else random activations explode (~1e10)."""
    import pytorch_fid.inception as pfi
    import torchvision

    torch.manual_seed(0)
    base = torchvision.models.inception_v3(num_classes=1008, aux_logits=False, weights=None, init_weights=True)
    original = pfi.load_state_dict_from_url
    pfi.load_state_dict_from_url = lambda url, **kw: base.state_dict()  # same keys as the FID blocks
    try:
        net = pfi.fid_inception_v3()
    finally:
        pfi.load_state_dict_from_url = original
    for mod in net.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.reset_running_stats()
            mod.momentum = None
    net.train()
    with torch.no_grad():
        net(torch.rand(n_calibration, 3, 299, 299) * 2 - 1)
    torch.save(net.state_dict(), path)
    return path


def save_torchscript(module: torch.nn.Module, path: Path) -> Path:
    """``module`` scripted and saved as TorchScript (the real I3D file's format)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated; the real file is TorchScript
        torch.jit.script(module.eval()).save(str(path))
    return path


def register_file(monkeypatch, name: str, path: Path, **changes) -> None:
    """Point the registry entry ``name`` at ``path``: that file's SHA-256 and size (plus ``changes``)."""
    spec = W.WEIGHTS[name]
    fake = dataclasses.replace(spec, sha256=sha256_file(path), size=path.stat().st_size, **changes)
    monkeypatch.setitem(W.WEIGHTS, name, fake)
