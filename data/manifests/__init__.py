"""Shipped benchmark manifests (package data, served as ``interactive_eyes.manifests``)."""
