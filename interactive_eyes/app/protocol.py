"""Scoring protocols: which metrics a ``score`` run computes and against which reference set.

* ``interactive`` (the default, InteractiveEyes): every registered metric that can run here,
  FID/FVD against ``--reference`` only.
* ``single``: the paper's single-person evaluation (Table 1: HDTF / VFHQ, 20 videos each) for a
  benchmark of one person per clip (``ie-bench manifest build`` writes ``"protocol": "single"``
  for such a folder; ``score --protocol single`` asks for it on any manifest):

  - ``sync``: Sync-C / Sync-D of the face track against the **video's own audio over the whole
    clip** (all windows, the offset search of syncnet_python; that is what ``sync`` does for a
    one-person clip, ``metrics/sync.py``);
  - ``identity``: cosine similarity of the first frame's face embedding to every later sampled
    frame (the metric's default definition, ``metrics/identity.py``);
  - ``fid``, ``fvd`` (and ``kid``, ``kvd`` where registered) against the **ground-truth videos**:
    the manifest's ``video`` files under the data root, read with the same sampling as the
    generated side (FID: every ``frame_stride``-th frame; FVD: 16-frame non-overlapping clips),
    because both sides go through the same metric instance. ``--reference`` overrides.

The protocol's metrics are *requested*: one that cannot run here is listed under
``skipped_metrics`` and makes the exit code 1 (the table row is incomplete). ``results.json``
records what the protocol did under ``protocol``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PROTOCOLS = ("single", "interactive")
SINGLE_METRICS = ("sync", "identity", "fid", "fvd", "kid", "kvd")
REFERENCE_METRICS = ("fid", "fvd", "kid", "kvd")
DEFINITIONS = {
    "sync": "Sync-C/Sync-D: the face track against the video's own audio, all windows of the clip",
    "identity": "first sampled frame's face embedding vs every later sampled frame (cosine), mean",
    "fid": "all sampled frames of the generated clips vs the ground-truth frames (same frame_stride)",
    "fvd": "16-frame non-overlapping clips of the generated vs the ground-truth videos",
    "kid": "as fid, kernel distance (unbiased MMD^2, cubic polynomial kernel)",
    "kvd": "as fvd, kernel distance (unbiased MMD^2, cubic polynomial kernel)",
}


@dataclass
class ProtocolPlan:
    name: str
    metrics: list[str] | None  # None: every registered metric (interactive)
    references: dict[str, str] = field(default_factory=dict)
    ground_truth: str | None = None  # the folder used as the default reference set

    def record(self) -> dict:
        rec: dict = {"name": self.name}
        if self.name == "single":
            rec.update(metrics=self.metrics, definitions={m: DEFINITIONS[m] for m in self.metrics or ()
                                                           if m in DEFINITIONS},
                       ground_truth=self.ground_truth, references=dict(self.references))
        return rec


def ground_truth_folder(benchmark, root: str | os.PathLike) -> Path | None:
    """The one folder under ``root`` holding every clip's ground-truth ``video``, or None
    (a clip without a video, a missing file, or videos spread over several folders)."""
    from interactive_eyes.data.paths import confined

    parents = set()
    for clip in benchmark.clips:
        if not clip.video:
            return None
        path = confined(root, clip.video, "video")
        if not path.is_file():
            return None
        parents.add(path.parent)
    return parents.pop() if len(parents) == 1 else None


def plan_protocol(benchmark, protocol: str | None, metrics: list[str] | None, references: dict[str, str],
                  root: str | os.PathLike) -> ProtocolPlan:
    """The metrics and references of ``protocol`` (else the manifest's, else interactive).

    ``ValueError`` (a usage error) for an unknown protocol or, under ``single``, a clip with more
    than one person.
    """
    name = protocol or getattr(benchmark, "protocol", None) or "interactive"
    if name not in PROTOCOLS:
        raise ValueError(f"protocol {name!r}: must be one of {', '.join(PROTOCOLS)}")
    if name == "interactive":
        return ProtocolPlan(name, metrics, dict(references))
    for clip in benchmark.clips:
        if clip.n_people != 1:
            raise ValueError(f"{benchmark.path or benchmark.name}: the single-person protocol needs one person per "
                             f"clip; clip {clip.id} has {clip.n_people} (use --protocol interactive)")
    from interactive_eyes.metrics import METRICS

    chosen = list(metrics) if metrics else [m for m in SINGLE_METRICS if m in METRICS]
    refs = dict(references)
    gt = ground_truth_folder(benchmark, root)
    if gt is not None:
        for m in REFERENCE_METRICS:
            refs.setdefault(m, str(gt))
    return ProtocolPlan(name, chosen, refs, str(gt) if gt is not None else None)


def score(generated_dir, *, benchmark, protocol: str | None = None, metrics: list[str] | None = None,
          options=None, data_root=None, out=None, **kwargs) -> dict:
    """``engine.score`` under a protocol; ``results["protocol"]`` (and results.json) record it."""
    from interactive_eyes.app import engine
    from interactive_eyes.app.store import write_json_atomic
    from interactive_eyes.data import manifest as manifest_mod
    from interactive_eyes.data.paths import data_root as resolve_root

    if benchmark is None or isinstance(benchmark, (str, os.PathLike)):
        benchmark = manifest_mod.load(benchmark)
    options = options or engine.EngineOptions()
    plan = plan_protocol(benchmark, protocol, metrics, options.references, resolve_root(data_root, benchmark.name))
    options.references = plan.references
    results = engine.score(generated_dir, benchmark=benchmark, metrics=plan.metrics, options=options,
                           data_root=data_root, out=out, **kwargs)
    results["protocol"] = plan.record()
    write_json_atomic((Path(out) if out else Path(generated_dir) / "ie-bench") / engine.RESULTS_FILE, results)
    return results
