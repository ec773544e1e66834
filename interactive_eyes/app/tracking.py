"""How a run's face tracks are read: every person in every frame, or each only where needed.

The tracker's mesh model is most of a face metric's time (``faces.track``). Interactivity reads a
person only around their listening time, so when it is the run's only face metric the tracker
follows each speaker by image motion alone and reads them only every few frames (``faces.track``
step 6, "on demand"). Any other face metric (Sync-C's mouth crops, identity) needs every face in
every frame, and then every frame is read. The mode is decided once per run from its metrics and
is part of the cache key of the metrics whose values depend on it (``EngineOptions.fingerprint``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the engine imports this module
    from interactive_eyes.app.engine import EngineOptions

FACE_NEEDS = frozenset({"faces", "landmarks"})
TRACKING_MODES = ("auto", "on-demand", "every-frame")


def tracking_mode(metrics, options: "EngineOptions") -> str:
    """'on-demand' when every metric of the run that needs faces can say in which frames it needs
    whom (``Metric.tracks_on_demand``: Interactivity reads only listeners) and ``options.tracking``
    allows it; else 'every-frame'. Decided for a whole run from its metrics (``score`` resolves it
    once), not per clip, so that a metric's value and cache key never depend on which other
    metrics a clip still had to compute or failed."""
    if options.tracking not in TRACKING_MODES:
        raise ValueError(f"tracking must be one of {', '.join(TRACKING_MODES)}, got {options.tracking!r}")
    if options.tracking == "every-frame":
        return "every-frame"
    face_metrics = [m for m in metrics if m.needs & FACE_NEEDS]
    if face_metrics and all(m.tracks_on_demand() for m in face_metrics):
        return "on-demand"
    return "every-frame"


def resolved(options: "EngineOptions", metrics) -> "EngineOptions":
    """``options`` with the run's tracking mode decided from ``metrics`` (``tracking_mode``)."""
    return replace(options, tracking=tracking_mode(metrics, options))
