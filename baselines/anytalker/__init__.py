"""Native AnyTalker reference generator (Wan2.1 I2V DiT + Audio-Face Cross Attention)."""
