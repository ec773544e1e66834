"""Generation methods, one adapter each (served as ``interactive_eyes.baselines``).

``METHODS`` maps a method name to its class as a lazy ``"module:Attr"`` entry: listing names
imports nothing. Add a method by writing ``baselines/<name>.py`` (a ``Method`` subclass, see
``base.py`` and docs/methods.md) and adding one line here.
"""

from interactive_eyes.registry import Registry

METHODS = Registry(
    "method",
    {
        "static": "interactive_eyes.baselines.static:StaticMethod",
        "puppet": "interactive_eyes.baselines.puppet:PuppetMethod",
    },
)
