"""Generation methods, one adapter each (served as ``interactive_eyes.baselines``)."""
