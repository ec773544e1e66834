"""ie-bench: evaluation suite for audio-driven multi-person talking-video generation.

The import root is ``interactive_eyes``; ``interactive_eyes.metrics`` and
``interactive_eyes.baselines`` are served from the repository's top-level ``metrics/`` and
``baselines/`` folders (see setup.cfg). Importing this package imports nothing heavy: the
Python API below is resolved on first use.

    from interactive_eyes import score, run_method, load_manifest
    results = score("my_outputs/")                    # the results.json object (dict)
    print(results["metrics"]["interactivity"]["value"])
    run_method("puppet", out_dir="outputs/puppet", reference_frames="frames/")

- ``score``: ``interactive_eyes.app.engine.score`` (what ``ie-bench score`` calls);
- ``run_method``: ``interactive_eyes.app.run.run_method`` (what ``ie-bench run`` calls);
- ``load_manifest``: ``interactive_eyes.data.manifest.load`` (a shipped name or a manifest file);
- ``EngineOptions``: device, landmark backend, per-metric options, reference sets.
"""

__version__ = "0.2.0"

# public name -> "module:attribute", imported on first access (PEP 562)
_API = {
    "score": "interactive_eyes.app.engine:score",
    "EngineOptions": "interactive_eyes.app.engine:EngineOptions",
    "run_method": "interactive_eyes.app.run:run_method",
    "load_manifest": "interactive_eyes.data.manifest:load",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    target = _API.get(name)
    if target is None:
        raise AttributeError(f"module 'interactive_eyes' has no attribute {name!r}")
    import importlib

    module, attr = target.split(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_API))
