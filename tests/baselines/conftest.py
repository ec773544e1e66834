"""Synthetic inputs for the method tests: two faces side by side and two tracks whose loudness is known.

The reference frame is scikit-image's astronaut photo next to its mirror image (two real faces,
768x384). The tracks are 16 kHz white noise shaped by a known level curve: the left person talks
in [0.1, 1.9] s, the right one in [2.1, 3.9] s, each level swinging between -45 and -20 dBFS at
its own rate (2.5 Hz left, 1.5 Hz right), and both are digital silence (+ -100 dBFS dither)
elsewhere. So each person listens while the other talks, and the loudness of each track at any
time is known in closed form.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from interactive_eyes.media.audio import write_wav as _write_wav

RATE = 16000
DURATION = 4.0
TURNS = {"left": (0.1, 1.9, 2.5), "right": (2.1, 3.9, 1.5)}  # start, end, level-swing frequency (Hz)


def level_db(role: str, t: np.ndarray) -> np.ndarray:
    """The designed level (dBFS, RMS) of a track at times ``t``."""
    s, e, f = TURNS[role]
    swing = -32.5 + 12.5 * np.cos(2 * np.pi * f * (t - s))  # -45 .. -20 dBFS
    return np.where((t >= s) & (t < e), swing, -100.0)


def write_wav(path: Path, x: np.ndarray, rate: int = RATE) -> Path:
    return _write_wav(path, x, rate)


def make_track(role: str, seed: int, duration: float = DURATION) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(duration * RATE)) / RATE
    amp = 10 ** (level_db(role, t) / 20)  # RMS of unit-variance noise = amplitude
    return (rng.standard_normal(t.size) * amp).astype(np.float32)


def two_faces() -> np.ndarray:
    skdata = pytest.importorskip("skimage.data")
    from PIL import Image

    a = skdata.astronaut()
    pair = np.concatenate([a, a[:, ::-1]], axis=1)  # 1024x512, faces ~100 px
    return np.asarray(Image.fromarray(pair).resize((768, 384), Image.LANCZOS))


@pytest.fixture(scope="session")
def synthetic_inputs(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("synthetic_inputs")
    from PIL import Image

    ref = folder / "two_faces.png"
    Image.fromarray(two_faces()).save(ref)
    tracks = {role: write_wav(folder / f"{role}.wav", make_track(role, seed=i)) for i, role in enumerate(TURNS)}
    return {"reference": ref, "tracks": tracks, "folder": folder}


@pytest.fixture(scope="session")
def synthetic_item(synthetic_inputs):
    from interactive_eyes.baselines.base import Item, ItemPerson
    from interactive_eyes.data.manifest import complement

    people = []
    for role, (s, e, _) in TURNS.items():
        people.append(ItemPerson(role=role, audio=synthetic_inputs["tracks"][role], speaking=((s, e),),
                                 listening=complement([(s, e)], DURATION)))
    return Item(clip_id="synthetic", duration=DURATION, people=tuple(people), prompt="",
                reference_frame=synthetic_inputs["reference"])


@pytest.fixture(scope="session")
def design():
    """The designed facts of the synthetic inputs, for tests to compute expectations from."""
    from types import SimpleNamespace

    return SimpleNamespace(duration=DURATION, turns=TURNS, level_db=level_db, rate=RATE)
