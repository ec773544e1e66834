"""ie-bench: evaluation suite for audio-driven multi-person talking-video generation.

The import root is ``interactive_eyes``; ``interactive_eyes.metrics`` and
``interactive_eyes.baselines`` are served from the repository's top-level ``metrics/`` and
``baselines/`` folders (see setup.cfg). Importing this package imports nothing heavy.
"""

__version__ = "0.1.0"
