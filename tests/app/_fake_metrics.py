"""Small deterministic metrics for engine tests (no model, no face tracker needed)."""

from __future__ import annotations

import numpy as np

from interactive_eyes.metrics.base import ClipResult, Metric


class MeanLuma(Metric):
    """Mean brightness of all frames (per clip); reports per-person halves of the frame too."""

    name = "mean_luma"
    version = "1"
    higher_is_better = True
    needs = frozenset({"frames"})
    secondary = ("half",)

    def __init__(self, scale: float = 1.0, device: str = "cpu"):
        self.scale = scale

    def params(self):
        return {"scale": self.scale}

    def start(self, ctx):
        return {"sum": 0.0, "n": 0, "n_people": ctx.clip.n_people, "cols": np.zeros(ctx.clip.n_people)}

    def update(self, state, frame):
        y = frame.rgb.astype(np.float64).mean(axis=2)
        state["sum"] += y.mean()
        state["n"] += 1
        for k, part in enumerate(np.array_split(y, state["n_people"], axis=1)):
            state["cols"][k] += part.mean()

    def finish(self, state):
        v = self.scale * state["sum"] / state["n"]
        return ClipResult(self.name, value=v, per_person={f"p{k}": c / state["n"] for k, c in enumerate(state["cols"])},
                          details={"n_frames": state["n"], "half": v / 2})


class LumaStats(Metric):
    """A set-level metric: mean of per-frame luma pooled over all clips, from summed statistics."""

    name = "luma_pooled"
    version = "1"
    higher_is_better = False
    needs = frozenset({"frames"})
    set_level = True

    def __init__(self, device: str = "cpu"):
        pass

    def start(self, ctx):
        return {"s": 0.0, "n": 0}

    def update(self, state, frame):
        state["s"] += float(frame.rgb.mean())
        state["n"] += 1

    def finish(self, state):
        return ClipResult(self.name, stats={"sum": np.array(state["s"]), "count": np.array(float(state["n"]))})

    def reduce(self, stats, reference=None):
        from interactive_eyes.metrics.base import SetResult

        s = sum(float(x["sum"]) for x in stats)
        n = sum(float(x["count"]) for x in stats)
        return SetResult(value=s / n, n_samples=int(n))


class Broken(Metric):
    name = "broken"
    version = "1"
    higher_is_better = True
    needs = frozenset({"frames"})

    def __init__(self, device: str = "cpu"):
        pass

    def start(self, ctx):
        return None

    def update(self, state, frame):
        if frame.index == 3:
            raise RuntimeError("boom")

    def finish(self, state):
        return ClipResult(self.name, value=1.0)


class LumaRef(LumaStats):
    """Set-level, needs a reference: |pooled mean luma - reference mean luma|."""

    name = "luma_ref"
    needs = frozenset({"frames", "reference"})

    def load_reference(self, source):
        with np.load(source) as z:
            return {"mean": z["mean"]}

    def reduce(self, stats, reference=None):
        from interactive_eyes.metrics.base import SetResult

        pooled = super().reduce(stats)
        return SetResult(value=abs(pooled.value - float(reference["mean"])), n_samples=pooled.n_samples)


class InvalidProtobuf(Exception):
    """Stands in for onnxruntime's exception on a truncated model file (not an OSError/ValueError)."""


class CorruptModel(MeanLuma):
    """A metric whose model file is unusable: ``unavailable()`` itself raises while loading it."""

    name = "corrupt_model"

    def unavailable(self):
        raise InvalidProtobuf("[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : Load model from w.onnx failed:Protobuf parsing failed.")


class CorruptInit(MeanLuma):
    """A metric whose constructor raises (it loads its model eagerly)."""

    name = "corrupt_init"

    def __init__(self, device: str = "cpu"):
        raise EOFError("w.pt: Ran out of input (truncated file)")


class OfflineProbe(MeanLuma):
    """Unavailable exactly when the weights layer is in offline mode (IE_BENCH_OFFLINE / --offline)."""

    name = "offline_probe"

    def unavailable(self):
        from interactive_eyes.weights import is_offline

        return "weights not cached and offline mode is on" if is_offline() else None


class SlowLuma(MeanLuma):
    """MeanLuma at 20 frames/s, so a run lasts long enough to be killed in the middle."""

    name = "slow_luma"

    def update(self, state, frame):
        import time

        time.sleep(0.05)
        super().update(state, frame)


class NanLuma(MeanLuma):
    """Returns NaN for clips whose frames are darker than 50 (a metric bug or a degenerate clip)."""

    name = "nan_luma"

    def finish(self, state):
        res = super().finish(state)
        if res.value < 50:
            res.value = float("nan")
        return res
