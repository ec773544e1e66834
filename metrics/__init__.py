"""Metrics, one file each, behind one contract (served as ``interactive_eyes.metrics``)."""
