"""The run's tracking mode (app/tracking.py): on demand only when every face metric can say whom it
needs, decided once per run, keyed, and carried from the metrics to the tracker and back."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from app_helpers import small_manifest, write_clip

from interactive_eyes.app import engine
from interactive_eyes.app.tracking import resolved, tracking_mode
from interactive_eyes.faces.types import FaceBox
from interactive_eyes.metrics.base import ClipResult, Metric
from interactive_eyes.metrics.interactivity import Interactivity


class FacesEverywhere(Metric):
    """A face metric that needs every face in every frame (as Sync-C's mouth crops do)."""

    name, version, higher_is_better = "faces_everywhere", "1", True
    needs = frozenset({"faces"})

    def start(self, ctx):
        return []

    def update(self, state, frame):
        state.append(frame.wanted)

    def finish(self, state):
        return ClipResult(self.name, value=1.0, details={"wanted": state})


class LeftOnly(FacesEverywhere):
    """Needs person 0 in the first half of the clip and person 1 in frames 3 and 4."""

    name = "left_only"

    def tracks_on_demand(self):
        return True

    def tracking_demand(self, ctx):
        return lambda index, time: (time < ctx.clip.duration / 2, index in (3, 4))


class RightEarly(LeftOnly):
    name = "right_early"

    def tracking_demand(self, ctx):
        return lambda index, time: (False, index < 2)


def test_on_demand_only_when_every_face_metric_can_say_whom_it_needs():
    opts = engine.EngineOptions()
    assert tracking_mode([Interactivity()], opts) == "on-demand"
    assert tracking_mode([Interactivity(), LeftOnly()], opts) == "on-demand"
    assert tracking_mode([Interactivity(mode="paper")], opts) == "every-frame"  # the script reads every face
    assert tracking_mode([Interactivity(), FacesEverywhere()], opts) == "every-frame"
    assert tracking_mode([], opts) == "every-frame"
    assert tracking_mode([Interactivity()], replace(opts, tracking="every-frame")) == "every-frame"
    # a run resolved to every-frame stays so for any subset of its metrics (a resumed clip)
    run = resolved(opts, [Interactivity(), FacesEverywhere()])
    assert run.tracking == "every-frame" and tracking_mode([Interactivity()], run) == "every-frame"
    with pytest.raises(ValueError, match="tracking must be one of"):
        tracking_mode([Interactivity()], replace(opts, tracking="sometimes"))


def test_the_tracking_mode_is_in_the_cache_key_of_the_metrics_it_changes():
    alone = resolved(engine.EngineOptions(), [Interactivity()])
    shared = resolved(engine.EngineOptions(), [Interactivity(), FacesEverywhere()])
    assert (alone.tracking, shared.tracking) == ("on-demand", "every-frame")
    key = lambda m, o: engine.cache_key("v" * 64, "c" * 64, m, o)  # noqa: E731
    assert key(Interactivity(), alone) != key(Interactivity(), shared)
    assert key(FacesEverywhere(), alone) == key(FacesEverywhere(), shared)  # never tracked on demand


class RecordingTracker:
    """Boxes for two people in every frame; records the ``want`` of each call."""

    landmark_backend = None

    def __init__(self, *a, **k):
        self.wants = []

    def update(self, rgb, time=None, want=None):
        self.wants.append(want)
        box = FaceBox(1, 1, 20, 20)
        return (box, box), None

    def summary(self):
        return None

    def close(self):
        pass


def _analyze(tmp_path, metrics):
    """``analyze_clip`` on a 12-frame, 12 fps clip of one second, through a RecordingTracker:
    (the tracker, the results)."""
    clip = small_manifest(1, duration=1.0).clip("c0")
    video = write_clip(tmp_path / "c0.mp4", n=12, fps=12)
    made = []

    def factory(*a):
        made.append(RecordingTracker())
        return made[-1]

    res = engine.analyze_clip(video, clip, metrics, options=engine.EngineOptions(allow_silent=True),
                              tracker_factory=factory)
    return made[0], res


def test_the_engine_asks_the_tracker_for_the_union_of_the_metrics_demands(tmp_path):
    tracker, res = _analyze(tmp_path, [LeftOnly(), RightEarly()])
    expected = [(k / 12 < 0.5, k in (3, 4) or k < 2) for k in range(12)]
    assert tracker.wants == expected
    assert res["left_only"].details["wanted"] == expected  # FrameData.wanted reaches every metric
    # with a metric that needs every face, nobody is asked for by name
    tracker, res = _analyze(tmp_path, [LeftOnly(), FacesEverywhere()])
    assert tracker.wants == [None] * 12 and res["faces_everywhere"].details["wanted"] == [None] * 12
    assert np.all([r.status == "ok" for r in res.values()])


class BrokenDemand(LeftOnly):
    name = "broken_demand"

    def tracking_demand(self, ctx):
        raise RuntimeError("no segments")


def test_a_metric_whose_demand_fails_costs_only_itself(tmp_path):
    tracker, res = _analyze(tmp_path, [BrokenDemand(), RightEarly()])
    assert res["broken_demand"].status == "failed" and "tracking demand: RuntimeError: no segments" in res["broken_demand"].reason
    assert res["right_early"].status == "ok"
    assert tracker.wants == [(False, k < 2) for k in range(12)]
