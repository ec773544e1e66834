"""Random weights of the real architectures, in the real file formats, for speed benchmarks.

Model weights cannot be downloaded here, and speed does not depend on the values, so
``full_benchmark.py`` scores with random networks of the same shapes:

* SyncNet (``metrics/syncnet.py``, syncnet_python's ``syncnet_v2.model`` layout);
* FID Inception (pytorch-fid's ``FIDInceptionA..E`` blocks on torchvision's Inception-v3,
  ``pt_inception-2015-12-05`` state dict);
* I3D (Carreira & Zisserman's Inflated Inception-v1, 400 Kinetics logits averaged over time),
  saved as TorchScript with the StyleGAN-V detector's call ``(x, rescale, resize, return_features)``;
* ArcFace ResNet-50 (InsightFace's IResNet-50: 3x3 stem, [3, 4, 14, 3] pre-activation blocks with
  PReLU, 512x7x7 -> 512 embedding), exported to ONNX like ``w600k_r50.onnx`` (N x 3 x 112 x 112).

The I3D and IResNet-50 modules are written from the architectures' published layer tables
(channel counts below), because no installed package provides them: 12.7 M and 43.6 M
parameters. Paddings are symmetric (TensorFlow's "same" padding of the released I3D is
asymmetric for even strides), which changes no cost.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn


# --------------------------------------------------------------------------- I3D


class Unit3D(nn.Module):
    def __init__(self, cin: int, cout: int, k=(1, 1, 1), s=(1, 1, 1), bn_relu: bool = True):
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, k, s, padding=tuple(x // 2 for x in k), bias=not bn_relu)
        self.bn = nn.BatchNorm3d(cout, eps=1e-3, momentum=0.01) if bn_relu else nn.Identity()
        self.act = nn.ReLU(inplace=True) if bn_relu else nn.Identity()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class Mixed(nn.Module):
    """Inception block: 1x1 | 1x1->3x3 | 1x1->3x3 | maxpool->1x1, concatenated."""

    def __init__(self, cin: int, c: tuple[int, int, int, int, int, int]):
        super().__init__()
        self.b0 = Unit3D(cin, c[0])
        self.b1 = nn.Sequential(Unit3D(cin, c[1]), Unit3D(c[1], c[2], (3, 3, 3)))
        self.b2 = nn.Sequential(Unit3D(cin, c[3]), Unit3D(c[3], c[4], (3, 3, 3)))
        self.b3 = nn.Sequential(nn.MaxPool3d(3, 1, 1), Unit3D(cin, c[5]))

    def forward(self, x):
        return torch.cat([self.b0(x), self.b1(x), self.b2(x), self.b3(x)], 1)


# (branch0, branch1 reduce, branch1, branch2 reduce, branch2, pool proj) of each Mixed block
_I3D_MIXED = {"3b": (64, 96, 128, 16, 32, 32), "3c": (128, 128, 192, 32, 96, 64), "4b": (192, 96, 208, 16, 48, 64),
              "4c": (160, 112, 224, 24, 64, 64), "4d": (128, 128, 256, 24, 64, 64), "4e": (112, 144, 288, 32, 64, 64),
              "4f": (256, 160, 320, 32, 128, 128), "5b": (256, 160, 320, 32, 128, 128),
              "5c": (384, 192, 384, 48, 128, 128)}


def _mixed(names, cin):
    layers = []
    for n in names:
        c = _I3D_MIXED[n]
        layers.append(Mixed(cin, c))
        cin = c[0] + c[2] + c[4] + c[5]
    return layers, cin


class I3D(nn.Module):
    """B x 3 x T x H x W in [0, 255] (``rescale``) -> B x 400 (logits averaged over time)."""

    def __init__(self, n_classes: int = 400):
        super().__init__()
        m3, c3 = _mixed(["3b", "3c"], 192)
        m4, c4 = _mixed(["4b", "4c", "4d", "4e", "4f"], c3)
        m5, c5 = _mixed(["5b", "5c"], c4)
        self.features = nn.Sequential(
            Unit3D(3, 64, (7, 7, 7), (2, 2, 2)), nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
            Unit3D(64, 64), Unit3D(64, 192, (3, 3, 3)), nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
            *m3, nn.MaxPool3d(3, 2, 1), *m4, nn.MaxPool3d(2, 2), *m5)
        self.logits = Unit3D(c5, n_classes, bn_relu=False)

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False,
                return_features: bool = False) -> torch.Tensor:
        if rescale:
            x = x / 127.5 - 1.0
        if resize:
            x = nn.functional.interpolate(x, size=(x.shape[2], 224, 224), mode="trilinear", align_corners=False)
        h = self.features(x)
        h = nn.functional.adaptive_avg_pool3d(h, (h.shape[2], 1, 1))  # the 7x7 spatial average pool
        return self.logits(h).mean(dim=(2, 3, 4))


# --------------------------------------------------------------------------- IResNet-50


class IBasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(nn.BatchNorm2d(cin, eps=1e-5), nn.Conv2d(cin, cout, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(cout, eps=1e-5), nn.PReLU(cout),
                                  nn.Conv2d(cout, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout, eps=1e-5))
        self.down = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout, eps=1e-5))
                     if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x):
        return self.body(x) + self.down(x)


class IResNet50(nn.Module):
    """N x 3 x 112 x 112 -> N x 512."""

    def __init__(self):
        super().__init__()
        layers, cin = [], 64
        for cout, n in ((64, 3), (128, 4), (256, 14), (512, 3)):
            layers += [IBasicBlock(cin, cout, 2)] + [IBasicBlock(cout, cout, 1) for _ in range(n - 1)]
            cin = cout
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64, eps=1e-5), nn.PReLU(64))
        self.layers = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.BatchNorm2d(512, eps=1e-5), nn.Flatten(), nn.Linear(512 * 7 * 7, 512),
                                  nn.BatchNorm1d(512, eps=1e-5))

    def forward(self, x):
        return self.head(self.layers(self.stem(x)))


# --------------------------------------------------------------------------- files


def _fid_inception_state():
    import pytorch_fid.inception as pfi
    import torchvision

    base = torchvision.models.inception_v3(num_classes=1008, aux_logits=False, weights=None, init_weights=True)
    original = pfi.load_state_dict_from_url
    pfi.load_state_dict_from_url = lambda url, **kw: base.state_dict()  # same keys as the FID blocks
    try:
        return pfi.fid_inception_v3().state_dict()
    finally:
        pfi.load_state_dict_from_url = original


def write_random_weights(folder: Path) -> dict[str, Path]:
    """Every benchmark model with random weights in its real format -> ``{name: path}``."""
    from interactive_eyes.metrics.syncnet import SyncNet, save_state_dict_like_reference

    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"syncnet": save_state_dict_like_reference(SyncNet().eval(), folder / "syncnet_v2.model")}
    torch.save(_fid_inception_state(), folder / "pt_inception-2015-12-05.pth")
    paths["fid"] = folder / "pt_inception-2015-12-05.pth"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit / the TorchScript ONNX exporter are deprecated
        torch.jit.script(I3D().eval()).save(str(folder / "i3d_torchscript.pt"))
        torch.onnx.export(IResNet50().eval(), torch.zeros(1, 3, 112, 112), str(folder / "w600k_r50.onnx"),
                          input_names=["input.1"], output_names=["embedding"], dynamic_axes={"input.1": {0: "n"}},
                          dynamo=False)
    paths["fvd"] = folder / "i3d_torchscript.pt"
    paths["identity"] = folder / "w600k_r50.onnx"
    return paths


def register_random_weights(paths: dict[str, Path]) -> None:
    """Point the weights registry's FID Inception and I3D entries at the random files (their
    size and SHA-256), in this process only: the metrics check every file they load against the
    registry, and these are, on purpose, not the released files."""
    import dataclasses

    from interactive_eyes import weights as W
    from interactive_eyes.download import sha256_file

    for name, key in (("pt_inception", "fid"), ("i3d_torchscript", "fvd")):
        f = Path(paths[key])
        fields = {"sha256": sha256_file(f), "size": f.stat().st_size}
        if "sha256_prefix" in {x.name for x in dataclasses.fields(W.WEIGHTS[name])}:
            fields["sha256_prefix"] = None
        W.WEIGHTS[name] = dataclasses.replace(W.WEIGHTS[name], **fields)


def n_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
