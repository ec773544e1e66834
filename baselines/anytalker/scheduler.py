"""The flow-matching UniPC sampler of AnyTalker (§10.1 of ``shared/spec/anytalker-model.md``).

The official schedule is computed here (:func:`official_flow_schedule`); the solver step is
diffusers' ``UniPCMultistepScheduler`` (bh2, data prediction, order 2, lower-order final, final
sigma zero) whose ``sigmas`` / ``timesteps`` are overwritten with the official schedule after
``set_timesteps`` — which reproduces the official trajectory (§10.1 item 4). diffusers' own flow
sigmas differ by up to 3e-4 in sigma and by 1 in some integer timesteps, hence the overwrite.

diffusers is imported lazily (inside :func:`make_unipc_scheduler`).
"""

from __future__ import annotations

import numpy as np
import torch

NUM_TRAIN_TIMESTEPS = 1000  # §3.2
SCHEDULER_INIT_SHIFT = 5.0  # the official scheduler is constructed with shift 5 (§10.1 item 1)
SAMPLE_SHIFT_480P = 3.0  # sampling shift for 832*480 and 480*832 a2v (§10.1 item 2)
SAMPLE_SHIFT_DEFAULT = 5.0  # every other size


def sample_shift_for_size(size: str) -> float:
    """§10.1 item 2: shift 3.0 for the "832*480" / "480*832" budgets, else 5.0."""
    return SAMPLE_SHIFT_480P if size.replace("x", "*") in ("832*480", "480*832") else SAMPLE_SHIFT_DEFAULT


def _shift(sigma, s: float):
    return s * sigma / (1 + (s - 1) * sigma)


def official_flow_schedule(num_steps: int, shift: float, *, num_train_timesteps: int = NUM_TRAIN_TIMESTEPS,
                           init_shift: float = SCHEDULER_INIT_SHIFT) -> tuple[torch.Tensor, torch.Tensor]:
    """The official sigmas (float32, num_steps + 1, last 0) and integer timesteps (int64,
    num_steps), §10.1 items 1-2, including the intentional double shift:

    1. training grid sigma_k = 1 - alpha_k, alpha = linspace(1, 1/N, N) reversed, shifted with the
       constructor shift (5) in float32; sigma_max / sigma_min = its first / last value;
    2. linspace(sigma_max, sigma_min, n+1) without its last element (float64), shifted again with
       the sampling shift; timesteps = truncate(sigma * N); a final sigma 0 is appended.
    """
    alphas = np.linspace(1.0, 1.0 / num_train_timesteps, num_train_timesteps)[::-1].copy()
    train_sigmas = _shift(torch.from_numpy(1.0 - alphas).to(torch.float32), init_shift)
    sigma_max, sigma_min = float(train_sigmas[0]), float(train_sigmas[-1])
    sigmas = np.linspace(sigma_max, sigma_min, num_steps + 1)[:-1]
    sigmas = _shift(sigmas, shift)
    timesteps = torch.from_numpy(sigmas * num_train_timesteps).to(torch.int64)
    sigmas = torch.from_numpy(np.concatenate([sigmas, [0.0]]).astype(np.float32))
    return sigmas, timesteps


def make_unipc_scheduler(num_steps: int, shift: float, device: torch.device | str | None = None, *,
                         num_train_timesteps: int = NUM_TRAIN_TIMESTEPS,
                         init_shift: float = SCHEDULER_INIT_SHIFT):
    """A diffusers ``UniPCMultistepScheduler`` set up as the official flow UniPC solver, with the
    official schedule. Use ``scheduler.timesteps`` (int64) as the DiT's timesteps and call
    ``scheduler.step(velocity, t, latent).prev_sample`` (the model output is the flow velocity;
    the solver predicts x0 = x_t - sigma_t * v)."""
    from diffusers import UniPCMultistepScheduler

    sched = UniPCMultistepScheduler(
        num_train_timesteps=num_train_timesteps,
        solver_order=2,
        prediction_type="flow_prediction",
        use_flow_sigmas=True,
        flow_shift=shift,
        predict_x0=True,
        solver_type="bh2",
        lower_order_final=True,
        final_sigmas_type="zero",
    )
    sched.set_timesteps(num_steps, device=device)
    sigmas, timesteps = official_flow_schedule(num_steps, shift, num_train_timesteps=num_train_timesteps,
                                               init_shift=init_shift)
    if len(sched.timesteps) != num_steps or len(sched.sigmas) != num_steps + 1:
        raise RuntimeError("diffusers UniPC produced an unexpected schedule length; cannot overwrite it")
    # diffusers keeps sigmas on the CPU and timesteps on the device (its own convention)
    sched.sigmas = sigmas
    sched.timesteps = timesteps.to(device) if device is not None else timesteps
    return sched
