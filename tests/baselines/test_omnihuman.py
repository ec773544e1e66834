"""OmniHuman (closed API): request building, no key = nothing sent, data-sharing consent, the
spending cap, and the cache keyed by the request hash (a cached request is never sent again)."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

import fake_upstream as fu
from test_adapters import make_item, media  # noqa: F401 (fixture)

from interactive_eyes.baselines.omnihuman import KEY_ENV, OmniHumanMethod, request_hash


class FakeAPI:
    """Stands in for fal: records every request and returns a 25 fps video of the image it got."""

    def __init__(self, tmp_path):
        self.calls = []
        self.tmp = tmp_path

    def __call__(self, request, api_key):
        from PIL import Image
        import io

        self.calls.append((request, api_key))
        head, data = request["image_url"].split(",", 1)
        assert head == "data:image/png;base64"
        img = np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))
        assert request["audio_url"].startswith("data:audio/wav;base64,")
        p = self.tmp / f"api_{len(self.calls)}.mp4"
        fu.emit(p, fu.resize(img, (96, 64)), 25, 30)
        return p.read_bytes()


@pytest.fixture
def api(tmp_path, monkeypatch):
    monkeypatch.setenv("IE_BENCH_HOME", str(tmp_path / "home"))
    fake = FakeAPI(tmp_path)
    monkeypatch.setattr(OmniHumanMethod, "transport", staticmethod(fake))
    return fake


def test_no_key_means_not_configured_and_nothing_sent(media, api, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.delenv(KEY_ENV, raising=False)
    m = OmniHumanMethod(upload_ok=True)
    assert m.missing() == [f"{KEY_ENV}: environment variable not set (the fal API key)"]
    with pytest.raises(RuntimeError, match=f"{KEY_ENV} is not set: nothing was sent"):
        m.generate(make_item(media, 1, 1.2), tmp_path / "o.mp4", seed=0)
    assert api.calls == []


def test_upload_needs_consent(media, api, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv(KEY_ENV, "k")
    with pytest.raises(RuntimeError, match="uploads the benchmark image and audio to a third party"):
        OmniHumanMethod().generate(make_item(media, 1, 1.2), tmp_path / "o.mp4", seed=0)
    assert api.calls == []


def test_request_cost_cap_and_cache(media, api, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv(KEY_ENV, "secret")
    item = make_item(media, 1, 1.2)
    m = OmniHumanMethod(upload_ok=True, max_spend_usd=0.5)
    info = m.generate(item, tmp_path / "a.mp4", seed=0)
    (req, key), = api.calls
    assert key == "secret" and req["resolution"] == "720p" and req["prompt"] == item.prompt
    assert info["cost_usd"] == pytest.approx(0.16 * 1.2) and not info["cached"]
    assert info["frames"] == 30 and info["geometry"]["use"] == "analytic"
    # same request again: served from the cache, not sent, not paid
    again = m.generate(item, tmp_path / "b.mp4", seed=0)
    assert len(api.calls) == 1 and again["cached"] and again["cost_usd"] == 0.0
    assert again["request_hash"] == info["request_hash"]
    ledger = json.loads((tmp_path / "home" / "omnihuman" / "spend.json").read_text())
    assert ledger["spent_usd"] == pytest.approx(0.192)
    # another prompt is another request; 0.192 + 0.192 + 0.192 > 0.5: the third is refused before sending
    from dataclasses import replace

    m.generate(replace(item, prompt="other"), tmp_path / "c.mp4", seed=0)
    with pytest.raises(RuntimeError, match=r"spending cap reached \(0.38 \+ 0.19 USD > max_spend_usd 0.50\)"):
        m.generate(replace(item, prompt="third"), tmp_path / "d.mp4", seed=0)
    assert len(api.calls) == 2


def test_request_hash_ignores_encoding_but_not_content():
    a = {"image_url": "data:image/png;base64,AAAA", "audio_url": "data:audio/wav;base64,BBBB", "resolution": "720p"}
    assert request_hash(a) == request_hash(dict(reversed(list(a.items()))))
    assert request_hash(a) != request_hash({**a, "audio_url": "data:audio/wav;base64,BBBC"})
    assert request_hash(a) != request_hash({**a, "resolution": "1080p"})


def test_one_speaker_per_request_and_length_limits(media):  # noqa: F811
    m = OmniHumanMethod(resolution="1080p")
    assert "handles at most 1" in m.check(make_item(media, 2, 1.2))
    from dataclasses import replace

    assert "above OmniHuman's 30 s at 1080p" in m.check(replace(make_item(media, 1, 1.2), duration=31.0))
