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
        "multitalk": "interactive_eyes.baselines.multitalk:MultiTalkMethod",
        "infinitetalk": "interactive_eyes.baselines.infinitetalk:InfiniteTalkMethod",
        "bind-your-avatar": "interactive_eyes.baselines.bind_your_avatar:BindYourAvatarMethod",
        "longcat-avatar": "interactive_eyes.baselines.longcat_avatar:LongCatAvatarMethod",
        "anytalker-official": "interactive_eyes.baselines.anytalker_official:AnyTalkerOfficialMethod",
        "hallo3": "interactive_eyes.baselines.hallo3:Hallo3Method",
        "sonic": "interactive_eyes.baselines.sonic:SonicMethod",
        "fantasytalking": "interactive_eyes.baselines.fantasytalking:FantasyTalkingMethod",
        "stableavatar": "interactive_eyes.baselines.stableavatar:StableAvatarMethod",
        "echomimic": "interactive_eyes.baselines.echomimic:EchoMimicMethod",
        "aniportrait": "interactive_eyes.baselines.aniportrait:AniPortraitMethod",
        "omniavatar": "interactive_eyes.baselines.omniavatar:OmniAvatarMethod",
        "wan-s2v": "interactive_eyes.baselines.wan_s2v:WanS2VMethod",
        "omnihuman": "interactive_eyes.baselines.omnihuman:OmniHumanMethod",
        "anytalker": "interactive_eyes.baselines.anytalker.method:AnyTalkerMethod",
    },
)
