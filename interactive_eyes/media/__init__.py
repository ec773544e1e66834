"""Foundation: streaming video and audio IO on PyAV."""
