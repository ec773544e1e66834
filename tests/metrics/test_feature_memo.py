"""fid + kid (and fvd + kvd) in one worker run their network once per batch, with the numbers of
separate passes: counted with a forward hook on the real-architecture network (random weights).
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("pytorch_fid.inception")

from interactive_eyes.metrics import feature_memo  # noqa: E402
from interactive_eyes.metrics.base import FrameData  # noqa: E402
from interactive_eyes.metrics.fid import FID  # noqa: E402
from interactive_eyes.metrics.kid import KID  # noqa: E402
from weight_files import random_fid_inception, register_file  # noqa: E402  (the shared helper module of this folder)


@pytest.fixture(scope="module")
def fid_file(tmp_path_factory):
    return random_fid_inception(tmp_path_factory.mktemp("memo") / "pt_inception-random.pth", 4)


@pytest.fixture
def weights(fid_file, monkeypatch):
    register_file(monkeypatch, "pt_inception", fid_file, sha256_prefix=None)
    feature_memo.clear()
    yield str(fid_file)
    feature_memo.clear()


def _frames(n: int, seed: int = 0) -> list[FrameData]:
    rng = np.random.default_rng(seed)
    return [FrameData(index=i, time=i / 25, rgb=rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)) for i in range(n)]


def _score(metrics, frames):
    """Feed every frame to every metric in turn, as the engine does, and finish them."""
    states = [m.start(None) for m in metrics]
    for f in frames:
        for m, s in zip(metrics, states):
            m.update(s, f)
    return [m.finish(s) for m, s in zip(metrics, states)]


def _forward_counter(net):
    calls = []
    handle = net.register_forward_hook(lambda *_: calls.append(1))
    return calls, handle


def test_fid_and_kid_share_one_forward_pass_per_batch(weights):
    frames = _frames(10)  # batch_size 4: batches of 4, 4, 2
    # separate passes first: the memo is cleared between them, so each runs the network itself
    alone_fid = _score([FID(dims=64, batch_size=4, weights_path=weights)], frames)[0]
    feature_memo.clear()
    alone_kid = _score([KID(dims=64, batch_size=4, weights_path=weights)], frames)[0]
    feature_memo.clear()

    fid, kid = FID(dims=64, batch_size=4, weights_path=weights), KID(dims=64, batch_size=4, weights_path=weights)
    assert fid.model is kid.model  # one network instance per (weights, dims, device)
    calls, handle = _forward_counter(fid.model)
    try:
        both_fid, both_kid = _score([fid, kid], frames)
    finally:
        handle.remove()
    assert len(calls) == 3  # 3 batches, not 6
    for key in alone_fid.stats:  # the Gaussian sums, bit for bit
        np.testing.assert_array_equal(both_fid.stats[key], alone_fid.stats[key])
    np.testing.assert_array_equal(both_kid.stats["features"], alone_kid.stats["features"])


def test_different_frame_policies_do_not_share(weights):
    frames = _frames(8)
    fid = FID(dims=64, batch_size=4, weights_path=weights)
    kid = KID(dims=64, batch_size=4, frame_stride=2, weights_path=weights)  # other frames in each batch
    calls, handle = _forward_counter(fid.model)
    try:
        _score([fid, kid], frames)
    finally:
        handle.remove()
    assert len(calls) == 2 + 1  # fid: 4 + 4 frames; kid: frames 0, 2, 4, 6 in one batch


def test_same_pixels_other_extractor_is_not_shared(weights):
    """A subclass with its own ``features`` (e.g. a stand-in) never reads the Inception's rows."""

    class Doubled(KID):
        def features(self, frames):
            return 2 * super().features(frames)

    frames = _frames(4)
    plain, doubled = _score([KID(dims=64, batch_size=4, weights_path=weights),
                             Doubled(dims=64, batch_size=4, weights_path=weights)], frames)
    np.testing.assert_allclose(doubled.stats["features"], 2 * plain.stats["features"], rtol=1e-6)
