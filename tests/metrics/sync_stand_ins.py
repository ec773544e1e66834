"""SyncNet stand-ins with a known answer, shared by the sync tests (a plain helper module).

``EnvelopeNet``: a window's video embedding is the per-frame brightness of the 5 crops, its audio
embedding the per-frame log energy (MFCC c0, 4 columns a frame), both z-scored within the window,
so the distance is smallest where brightness and loudness move together: a video whose picture
leads its audio by k frames has its best offset at k.

``random_syncnet``: the real SyncNet architecture with every tensor drawn from one seeded
generator (the same network on every run; test_syncnet.py checks it against syncnet-python).
"""

from __future__ import annotations

import math

import torch

from interactive_eyes.metrics import syncnet as sn


class EnvelopeNet(torch.nn.Module):
    @staticmethod
    def _z(x):
        x = x - x.mean(1, keepdim=True)
        return x / (x.norm(dim=1, keepdim=True) + 1e-6)

    def embed_video(self, x):  # N x 3 x 5 x 224 x 224
        return self._z(x.mean(dim=(1, 3, 4)))

    def embed_audio(self, m):  # N x 1 x 13 x 20
        return self._z(m[:, 0, 0].reshape(-1, 5, 4).mean(2))


# Scale of the final bias the two embedding heads share (see random_syncnet). Chosen so a
# zero-padded comparison (distance |v|) is worse than a real one (|v - a|): with the shared bias
# 0.15 x N(0, 1) per dimension the mean distance rises by ~0.045 per window of padding.
SHARED_BIAS = 0.15


@torch.no_grad()
def random_syncnet(seed: int = 0) -> sn.SyncNet:
    """A SyncNet whose every tensor comes from one seeded generator, so each run uses the same
    network: conv / linear weights and biases drawn like torch's default init (uniform in
    +-1/sqrt(fan_in)), BatchNorm scale, shift and running statistics random around identity.

    The audio and the video head end in the same random bias (trained SyncNet embeddings share
    a common component too). Without it, a random net's |v - a| exceeds |v|, so the reference's
    zero padding wins and the best offset sits at the search edge (+-15); with it, unpadded
    comparisons win and the best offset lies inside the range.
    """
    g = torch.Generator().manual_seed(seed)
    net = sn.SyncNet()
    seeded: set[str] = set()
    for mname, m in net.named_modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.Linear)):
            bound = 1 / math.sqrt(m.weight[0].numel())
            m.weight.copy_((torch.rand(m.weight.shape, generator=g) * 2 - 1) * bound)
            m.bias.copy_((torch.rand(m.bias.shape, generator=g) * 2 - 1) * bound)
            seeded |= {f"{mname}.weight", f"{mname}.bias"}
        elif isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.weight.copy_(torch.rand(m.weight.shape, generator=g) * 0.5 + 0.75)
            m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) * 0.5 + 0.75)
            seeded |= {f"{mname}.{k}" for k in ("weight", "bias", "running_mean", "running_var")}
    shared = torch.randn(net.netfclip[3].bias.shape, generator=g) * SHARED_BIAS
    net.netfclip[3].bias.copy_(shared)
    net.netfcaud[3].bias.copy_(shared)
    unseeded = {k for k in net.state_dict() if not k.endswith("num_batches_tracked")} - seeded
    assert not unseeded, f"tensors left at torch's unseeded init: {sorted(unseeded)}"
    return net.eval()
