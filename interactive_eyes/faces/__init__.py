"""Foundation: face detection, identity-consistent face tracks (N people) and landmark backends."""
