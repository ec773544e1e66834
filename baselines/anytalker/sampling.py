"""The AnyTalker sampling loop: UniPC flow matching with one-scale classifier-free guidance (§10).

Per step two DiT evaluations (§10.2):

- cond: prompt text, real audio features, global CLIP tokens, face CLIP tokens, face masks, y;
- uncond: negative-prompt text and the audio features replaced by zeros (in feature space),
  everything else identical;

v = v_uncond + g (v_cond - v_uncond), then one UniPC step (scheduler.py: the official double-shifted
schedule on diffusers' bh2 solver). ``batch_cfg=True`` runs both passes as one DiT call of batch 2
(the same weights read once per step; about 1.2-1.5x faster than two calls on a GPU, twice the
activation memory); ``False`` runs them one after the other (the official way, lowest memory).
The two agree to float rounding (different GEMM shapes), not bit for bit; each mode on its own is
deterministic on the CPU.

Precision as the official ``use_half False`` mode (§10.3): the latent, the guidance combination
and the solver in float32, the DiT's linears and attention in the dtype of its weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from .scheduler import make_unipc_scheduler

DEFAULT_GUIDANCE = 4.5  # every official command (argparse default 3.0), §10.1
DEFAULT_STEPS = 20  # argparse default and the shipped script; the README's 1.3B command uses 40


@dataclass
class Conditioning:
    """Everything the DiT takes besides the latent and the timestep, for both CFG branches."""

    context: torch.Tensor  # prompt tokens [n, text_dim] (real tokens only)
    context_null: torch.Tensor  # negative-prompt tokens [m, text_dim]
    clip_fea: torch.Tensor  # [1, 257, clip_dim]
    y: torch.Tensor  # [20, f, H, W]: 4 mask channels + reference latent
    audio: Sequence[torch.Tensor]  # per identity [F, 5, 12, 768]
    ref_faces: Sequence[torch.Tensor]  # per identity [1, 257, clip_dim]
    face_masks: Sequence[torch.Tensor]  # per identity [1, 1, f, H/2, W/2]
    extra: dict = field(default_factory=dict)

    def to(self, device: torch.device | str) -> "Conditioning":
        def mv(t):
            return t.to(device)

        return Conditioning(mv(self.context), mv(self.context_null), mv(self.clip_fea), mv(self.y),
                            [mv(a) for a in self.audio], [mv(r) for r in self.ref_faces],
                            [mv(m) for m in self.face_masks], self.extra)


def initial_noise(shape: Sequence[int], seed: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """[16, f, H, W] float32 standard normal from a generator seeded with ``seed`` on ``device``
    (the official code draws on the CUDA generator: the same seed gives other numbers on another
    device, §9.1)."""
    gen = torch.Generator(device=device).manual_seed(int(seed))
    return torch.randn(tuple(shape), generator=gen, device=device, dtype=torch.float32)


def guided_velocity(dit, x: torch.Tensor, t: torch.Tensor, cond: Conditioning, guidance: float,
                    batch_cfg: bool = True) -> torch.Tensor:
    """v_u + g (v_c - v_u) for one latent ``x`` [16, f, H, W] at integer timestep ``t`` (float32)."""
    zeros = [torch.zeros_like(a) for a in cond.audio]
    if batch_cfg:
        audio = [torch.stack([a, z]) for a, z in zip(cond.audio, zeros)]  # [2, F, 5, 12, 768]
        v = dit([x, x], t.reshape(1).expand(2), [cond.context, cond.context_null], cond.clip_fea,
                [cond.y, cond.y], audio=audio, ref_faces=cond.ref_faces, face_masks=cond.face_masks)
        v_cond, v_uncond = v[0].float(), v[1].float()
    else:
        v_cond = dit([x], t.reshape(1), [cond.context], cond.clip_fea, [cond.y], audio=list(cond.audio),
                     ref_faces=cond.ref_faces, face_masks=cond.face_masks)[0].float()
        v_uncond = dit([x], t.reshape(1), [cond.context_null], cond.clip_fea, [cond.y], audio=zeros,
                       ref_faces=cond.ref_faces, face_masks=cond.face_masks)[0].float()
    return v_uncond + guidance * (v_cond - v_uncond)


@torch.no_grad()
def sample(dit, noise: torch.Tensor, cond: Conditioning, *, steps: int = DEFAULT_STEPS, shift: float,
           guidance: float = DEFAULT_GUIDANCE, batch_cfg: bool = True,
           on_step: Callable[[int, int, float], None] | None = None) -> torch.Tensor:
    """Run ``steps`` UniPC steps from ``noise`` [16, f, H, W]; returns the final latent x0 (float32).

    ``on_step(i, timestep, seconds)`` is called after every step (progress, timing).
    """
    import time

    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    device = noise.device
    sched = make_unipc_scheduler(steps, shift, device=device)
    x = noise.float()
    for i, t in enumerate(sched.timesteps):
        t0 = time.perf_counter()
        v = guided_velocity(dit, x, t.to(device), cond, guidance, batch_cfg)
        # diffusers' step works on a batch axis; the solver arithmetic stays float32
        x = sched.step(v[None], t, x[None], return_dict=False)[0][0].float()
        if on_step is not None:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            on_step(i, int(t), time.perf_counter() - t0)
    return x
