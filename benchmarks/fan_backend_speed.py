"""Speed of the face-alignment landmark backend (2D-FAN-4), and CPU/CUDA agreement.

    python benchmarks/fan_backend_speed.py [--device cuda] [--faces 1 2 6] [--weights FILE]

Without ``--weights`` the network is a random-initialised full-size 2D-FAN-4 saved in the
released file format (the real weights need a download): the speed is the same, and the CPU vs
device comparison checks the device path computes the same network. Prints frames/s and faces/s
for N faces per 1920x1080 frame (all N in one batch, crops included).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--faces", type=int, nargs="+", default=[1, 2, 6])
    ap.add_argument("--weights", help="a FAN state dict (default: random full-size 2D-FAN-4)")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--tf32", action="store_true", help="allow TF32 convolutions (the backend's allow_tf32)")
    args = ap.parse_args(argv)

    import torch

    from interactive_eyes.faces import fan
    from interactive_eyes.faces.types import FaceBox

    weights = args.weights
    if weights is None:
        torch.manual_seed(0)
        net = fan.build_fan()
        for m in net.modules():  # non-trivial BN statistics
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_var.uniform_(0.5, 1.5)
                m.running_mean.uniform_(-0.1, 0.1)
        weights = str(Path(tempfile.mkdtemp()) / "2DFAN4-random.pth.tar")
        torch.save(net.state_dict(), weights)
    dev = args.device
    name = torch.cuda.get_device_name() if dev.startswith("cuda") else "cpu"
    print(f"torch {torch.__version__}, device {dev} ({name}), tf32 {args.tf32}, weights {weights}")

    rgb = np.random.default_rng(0).integers(0, 255, (1080, 1920, 3), dtype=np.uint8)
    boxes = [FaceBox(100 + 290 * i, 300, 350 + 290 * i, 600) for i in range(max(args.faces))]
    backend = fan.FaceAlignmentBackend(weights_path=weights, device=dev, allow_tf32=args.tf32)
    if dev != "cpu":
        cpu = fan.FaceAlignmentBackend(weights_path=weights, device="cpu")
        crops = np.stack([fan.crop_face(rgb, b)[0] for b in boxes[:2]])
        x = torch.from_numpy(crops).permute(0, 3, 1, 2).float().div(255)
        with torch.inference_mode(), torch.backends.cudnn.flags(enabled=True, allow_tf32=args.tf32):
            ref = cpu.net(x)
            got = backend.net(x.to(dev)).cpu()  # as the backend runs it
        print(f"heatmaps, max |cpu - {dev}|: {float((ref - got).abs().max()):.3g} "
              f"(largest |heatmap| {float(ref.abs().max()):.3g})")
        a = cpu.locate(rgb, boxes[:2], [None] * 2)
        b = backend.locate(rgb, boxes[:2], [None] * 2)
        same = np.mean([np.mean(np.all(np.abs(p - q) < 1e-6, axis=1)) for p, q in zip(a, b)])
        print(f"points identical on cpu and {dev}: {same:.1%}")

    def sync():
        if dev.startswith("cuda"):
            torch.cuda.synchronize()

    for n in args.faces:
        for _ in range(3):
            backend.locate(rgb, boxes[:n], [None] * n)
        sync()
        t0 = time.perf_counter()
        for _ in range(args.repeats):
            backend.locate(rgb, boxes[:n], [None] * n)
        sync()
        dt = (time.perf_counter() - t0) / args.repeats
        print(f"{n} face(s) per frame: {1 / dt:8.1f} frames/s {n / dt:8.1f} faces/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
