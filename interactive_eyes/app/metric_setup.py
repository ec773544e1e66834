"""Which metrics a ``score`` run computes, and which earlier results it carries forward.

``prepare_metrics``: every requested metric is built and asked whether it can run here. A metric
that cannot (not installed, weights missing offline, a truncated model file raising from its
constructor or from ``unavailable()``, no reference set, no data root) is *skipped* with a
one-line reason; it never crashes the run. Only a bad option value given on the command line
(``--option metric.key=value`` rejected by the constructor) is a usage error.

``previous_metrics``: metrics not computed this run whose records for the *current* inputs (same
cache key: video bytes, clip definition, metric version/params/weights, run options) are already
in per_clip.jsonl, so results.json keeps them instead of dropping them.
"""

from __future__ import annotations

import logging
from pathlib import Path

from interactive_eyes.app.checks import one_line
from interactive_eyes.download import sha256_file

log = logging.getLogger(__name__)

REFERENCE_HINT = "needs a reference set: --reference stats.npz (from `ie-bench stats`) or a folder of real videos"


class MetricOptionError(ValueError):
    """A metric rejected an option value given on the command line (a usage error)."""


def _build_one(name: str, options):
    from interactive_eyes.app.engine import build_metrics

    try:
        return build_metrics([name], options)[0], None
    except (KeyError, MetricOptionError):
        raise
    except ValueError as exc:
        if str(exc).startswith(f"metric {name}: unknown option"):
            raise
        if options.metric_options.get(name):
            raise MetricOptionError(f"metric {name}: {exc}") from None
        return None, one_line(exc)
    except TypeError as exc:
        if options.metric_options.get(name):
            raise MetricOptionError(f"metric {name}: {exc}") from None
        return None, one_line(exc)
    except Exception as exc:  # a model file that does not load (InvalidProtobuf, EOFError, ...)
        return None, one_line(exc)


def _load_reference(metric, source: str, into: dict) -> str | None:
    """Load (or compute) a metric's reference statistics once per run; a reason on failure."""
    src = Path(source)
    try:
        arrays = metric.load_reference(src)
    except Exception as exc:  # provenance mismatch, unreadable file, empty folder ...
        return f"reference {src}: {one_line(exc)}"
    into[metric.name] = {"arrays": arrays, "source": str(src),
                         "sha256": sha256_file(src) if src.is_file() else None}
    return None


def prepare_metrics(names: list[str], options, root: Path, *, requested: bool):
    """-> (runnable instances, {name: reason skipped}, {name: loaded reference})."""
    runnable, skipped, references = [], {}, {}
    for name in names:
        m, reason = _build_one(name, options)
        if reason is None and "reference" in m.needs and not options.references.get(m.name):
            reason = REFERENCE_HINT
        if reason is None:
            try:
                reason = m.unavailable()
            except Exception as exc:  # e.g. a truncated ONNX file raising while it loads
                reason = one_line(exc)
        if reason is None and "person_audio" in m.needs and not root.is_dir():
            reason = f"per-person audio needs the data root {root} (ie-bench data fetch, or --root)"
        if reason is None and "reference" in m.needs:
            reason = _load_reference(m, options.references[m.name], references)
        if reason:
            reason = " ".join(str(reason).split())
            if requested:  # explicitly requested: say so loudly, but still record it
                log.warning("metric %s cannot run: %s", name, reason)
            skipped[name] = reason
        else:
            runnable.append(m)
    return runnable, skipped, references


def previous_metrics(recorded_names: set[str], computed: set[str], options, plans: dict, done: dict,
                     key_of) -> tuple[list, dict]:
    """Metrics recorded earlier for the current inputs -> (instances, {(clip, metric): record})."""
    from interactive_eyes.metrics import METRICS

    found, records = [], {}
    for name in sorted(recorded_names - computed):
        if name not in METRICS:
            continue
        try:
            m, reason = _build_one(name, options)
        except ValueError:
            continue
        if m is None or "reference" in m.needs:  # a set-level reduce against a reference needs it loaded
            continue
        mine = {}
        for cid, plan in plans.items():
            if plan.video_sha256 is None or plan.problem:
                continue  # a clip that fails its checks now is not carried forward as ok
            rec = done.get(key_of(plan, m))
            if rec is not None:
                mine[(cid, name)] = rec
        if mine:
            found.append(m)
            records.update(mine)
    return found, records
