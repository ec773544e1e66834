"""One network forward pass per batch when two metrics read the same features (fid + kid on
Inception, fvd + kvd on I3D) in one worker.

KID subclasses FID and KVD subclasses FVD: with both requested, the engine feeds each the same
decoded frames, and each used to run the network on the same batches. ``shared_features`` keeps
the last few batches' features, keyed by

- the extractor: the network, its weights file, feature size and device (a subclass that
  replaces ``features``, e.g. a test stand-in, bypasses the memo), and
- the batch itself: the shapes and a BLAKE2b digest of its pixels,

so features are reused only for bit-identical input to the same network, in the same batch
(batch composition can change float results in the last bits, so a batch is never re-cut):
the numbers are those of a separate pass, and no clip or frame policy can be mixed up.
Different ``frame_stride`` or ``batch_size`` give different batches and simply miss.

``cached_network`` holds one loaded network per (builder, weights, options, device), so fid and
kid (or fvd and kvd) in one worker also share the weights in memory. Networks run in eval mode
under ``torch.no_grad``: they hold no state between calls.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable, Sequence

import numpy as np

from interactive_eyes.metrics import batching

# fid then kid flush the same batch one after the other (the engine feeds every metric each frame
# before the next), so the batch just computed is the one read next; a few spare entries cover a
# third reader or a batch cut early by a frame-size change. With K clips in flight
# (metrics/batching.py) the other clips' batches come in between, so the memo holds that many per clip.
MAX_BATCHES = 4

_lock = threading.Lock()
_memo: OrderedDict[tuple, np.ndarray] = OrderedDict()
_networks: dict[tuple, Any] = {}


def batch_digest(batch: Sequence[np.ndarray]) -> tuple:
    """Shapes, dtypes and a digest of the pixels of a batch of arrays."""
    h = hashlib.blake2b(digest_size=16)
    for a in batch:
        h.update(np.ascontiguousarray(a).data)
    return tuple((a.shape, str(a.dtype)) for a in batch), h.hexdigest()


def shared_features(extractor: Hashable, batch: Sequence[np.ndarray], compute: Callable[[list], np.ndarray]
                    ) -> np.ndarray:
    """``compute(batch)``, or the features the same extractor returned for an identical batch."""
    key = (extractor, batch_digest(batch))
    with _lock:
        hit = _memo.get(key)
        if hit is not None:
            _memo.move_to_end(key)
            return hit.copy()
    feats = np.asarray(compute(list(batch)))
    with _lock:
        _memo[key] = feats.copy()
        service = batching.active()
        limit = MAX_BATCHES * max(1, service.participants if service is not None else 1)
        while len(_memo) > limit:
            _memo.popitem(last=False)
    return feats


def cached_network(key: Hashable, build: Callable[[], Any]) -> Any:
    """The network built once per ``key`` in this process."""
    with _lock:
        net = _networks.get(key)
    if net is None:
        net = build()
        with _lock:
            net = _networks.setdefault(key, net)
    return net


def clear() -> None:
    """Forget every memoised batch and network (tests)."""
    with _lock:
        _memo.clear()
        _networks.clear()
