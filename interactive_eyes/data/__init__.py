"""Foundation: the benchmark (manifest schema and loader, data root, fetch and verify)."""
