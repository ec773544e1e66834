"""Test metrics for the executors, importable by spawned workers and Ray actors (tests/app on their path)."""

from __future__ import annotations

import os
from pathlib import Path

from _fake_metrics import MeanLuma


class DieOnce(MeanLuma):
    """MeanLuma whose worker process exits (as a crash or the OOM killer would end it) when it
    starts clip ``die_on``, the first ``times`` times (-1: always); the deaths so far are counted
    in the file ``marker``. Neither option changes a number, so neither is in params() (the cache
    keys equal those of a run that never dies)."""

    name = "die_once"

    def __init__(self, die_on: str = "", marker: str = "", times: int = 1, device: str = "cpu"):
        super().__init__()
        self.die_on, self.marker, self.times = die_on, marker, times

    def start(self, ctx):
        if ctx.clip.id == self.die_on and self.marker:
            path = Path(self.marker)
            deaths = int(path.read_text()) if path.exists() else 0
            if self.times < 0 or deaths < self.times:
                path.write_text(str(deaths + 1))
                os._exit(17)
        return super().start(ctx)


class DeviceProbe(MeanLuma):
    """MeanLuma that reports the process and the CUDA_VISIBLE_DEVICES it ran under, and the device it was built for."""

    name = "device_probe"

    def __init__(self, device: str = "cpu"):
        super().__init__()
        self.device = device

    def finish(self, state):
        res = super().finish(state)
        res.details.update(pid=os.getpid(), cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
                           device=self.device)
        return res


class PathProbe(MeanLuma):
    """MeanLuma that reports the path it read the video from."""

    name = "path_probe"

    def start(self, ctx):
        state = super().start(ctx)
        state["read_from"] = str(ctx.video_path)
        return state

    def finish(self, state):
        res = super().finish(state)
        res.details["read_from"] = state["read_from"]
        return res


def register(metrics_registry) -> None:
    for cls in (DieOnce, DeviceProbe, PathProbe):
        if cls.name not in metrics_registry:
            metrics_registry.register(cls.name, f"_executor_metrics:{cls.__name__}")


# --------------------------------------------------------------------------- a method for `run`

from interactive_eyes.baselines.base import Capabilities, Method  # noqa: E402


class PickyMethod(Method):
    """Writes clip c0 (and any other), declines c1 (its check), fails on c2 (its generate);
    ``info`` says which process and CUDA_VISIBLE_DEVICES generated the clip."""

    name = "picky"
    version = "1"
    capabilities = Capabilities(max_people=None, binding="none", native_fps=12, frame_rule="round(12 T)",
                                resolution="48x64", needs_reference_frame=False)

    def check(self, item):
        return "c1 is too hard for picky" if item.clip_id == "c1" else None

    def generate(self, item, out_path, *, seed):
        from app_helpers import write_clip

        if item.clip_id == "c2":
            raise RuntimeError("CUDA out of memory (fake)")
        write_clip(out_path, value=60)
        return {"pid": os.getpid(), "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}


def write_person_audio(bench, root: Path) -> Path:
    """One second of silence for every person's track of ``bench`` under ``root``."""
    import numpy as np
    from scipy.io import wavfile

    for clip in bench.clips:
        for p in clip.people:
            f = root / p.audio
            f.parent.mkdir(parents=True, exist_ok=True)
            wavfile.write(f, 16000, np.zeros(16000, np.float32))
    return root


def failing_setup(*args, device=None):
    """A worker setup that cannot load its model (as on a node without the weights)."""
    raise FileNotFoundError("/nowhere/syncnet_v2.model: weights file not found on this node")


def echo_call(state, x):
    return x


def echo_setup(*args, device=None):
    return None


def boom_call(state, x):
    if x == 2:
        raise ValueError(f"task {x}: a bug in the worker's own code")
    return x
