"""Foundation: shared statistics (Frechet distance, bootstrap confidence intervals)."""
