"""Metrics, one file each, behind one contract (``metrics/base.py``); served as ``interactive_eyes.metrics``.

``METRICS`` is the one registry the application uses: entries are ``"module:Attr"`` strings
imported only when a metric is used, so listing metrics imports nothing heavy.
"""

from interactive_eyes.registry import Registry

METRICS = Registry(
    "metric",
    {
        "interactivity": "interactive_eyes.metrics.interactivity:Interactivity",
        "sync": "interactive_eyes.metrics.sync:SyncC",
        "fid": "interactive_eyes.metrics.fid:FID",
        "fvd": "interactive_eyes.metrics.fvd:FVD",
        "kid": "interactive_eyes.metrics.kid:KID",
        "kvd": "interactive_eyes.metrics.kvd:KVD",
        "identity": "interactive_eyes.metrics.identity:IdentitySimilarity",
    },
)
