"""``omnihuman``: ByteDance OmniHuman-1.5 through a hosted API (closed source; spec §3.7).

Through fal (``fal-ai/bytedance/omnihuman/v1.5``): a request holds ``image_url``, ``audio_url``
(both sent as data URIs), optional ``prompt`` and ``resolution``; it is queued (submit, poll)
and the result URL expires, so the video is downloaded at once. One request drives **one**
speaker, so this adapter runs single-person items (``--composite`` runs it per person on crops).

Before anything is sent:

* the API key comes from ``$FAL_KEY``; without it the method is "not configured" and the run
  stops before any clip;
* ``upload_ok`` must be true: the benchmark's images and audio go to a third party;
* a **spending cap**: each request costs ``price_per_s`` (USD 0.16) x the clip duration; the
  running total is kept in ``$IE_BENCH_HOME/omnihuman/spend.json`` and a request that would go
  over ``max_spend_usd`` is refused (the clip fails with that reason);
* a **cache keyed by the request hash** (sha256 of the canonical request with the image and audio
  replaced by their sha256): ``$IE_BENCH_HOME/omnihuman/cache/<hash>.mp4``. A cached request is
  never sent (nor paid) again.

``transport(request, api_key) -> bytes`` is injectable (tests use a fake); the default speaks
fal's queue API over urllib. The output fps is not documented, so the file's own rate is used.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Callable

from interactive_eyes.baselines.base import Capabilities, Item, Method

MODEL = "fal-ai/bytedance/omnihuman/v1.5"
QUEUE = "https://queue.fal.run"
KEY_ENV = "FAL_KEY"
MAX_S = {"720p": 60.0, "1080p": 30.0}


def _data_uri(path: Path, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(Path(path).read_bytes()).decode()}"


def request_hash(request: dict) -> str:
    """sha256 of the canonical request, with data URIs replaced by the sha256 of their bytes."""
    canon = {k: (hashlib.sha256(v.encode()).hexdigest() if isinstance(v, str) and v.startswith("data:") else v)
             for k, v in request.items()}
    return hashlib.sha256(json.dumps(canon, sort_keys=True).encode()).hexdigest()


def fal_transport(request: dict, api_key: str, *, poll_s: float = 5.0, timeout_s: float = 3600.0) -> bytes:
    """Submit to fal's queue, poll until done, download the video (urllib only)."""
    import urllib.request

    headers = {"Authorization": f"Key {api_key}", "Content-Type": "application/json"}

    def call(url, data=None):
        req = urllib.request.Request(url, data=json.dumps(data).encode() if data is not None else None, headers=headers,
                                     method="POST" if data is not None else "GET")
        with urllib.request.urlopen(req, timeout=120) as r:
            return json.loads(r.read())

    sub = call(f"{QUEUE}/{MODEL}", request)
    deadline = time.monotonic() + timeout_s
    while call(sub["status_url"]).get("status") != "COMPLETED":
        if time.monotonic() > deadline:
            raise TimeoutError(f"{MODEL}: request {sub.get('request_id')} not done after {timeout_s:g} s")
        time.sleep(poll_s)
    url = call(sub["response_url"])["video"]["url"]
    with urllib.request.urlopen(url, timeout=600) as r:
        return r.read()


class OmniHumanMethod(Method):
    """OmniHuman-1.5 via fal (closed API; paid per second; uploads the inputs)."""

    name = "omnihuman"
    version = "1"
    capabilities = Capabilities(
        max_people=1, binding="mask_api", native_fps=25, frame_rule="the audio's length (fps: the file's own, undocumented)",
        resolution="720p or 1080p", max_duration=60.0, gpu_memory_gb=None, uses_prompt=True, deterministic=False,
        repo=None, code_license="closed (provider terms of service)", weight_licenses=("closed",),
    )
    DEFAULT_PARAMS = {"resolution": "720p", "max_spend_usd": 10.0, "price_per_s": 0.16, "upload_ok": False, "crf": 18}
    transport: Callable[[dict, str], bytes] = staticmethod(fal_transport)

    def missing(self) -> list[str]:
        return [] if os.environ.get(KEY_ENV) else [f"{KEY_ENV}: environment variable not set (the fal API key)"]

    def check(self, item: Item) -> str | None:
        reason = super().check(item)
        cap = MAX_S.get(self._params["resolution"])
        if reason is None and cap is not None and item.duration > cap:
            reason = f"duration {item.duration:.2f} s is above OmniHuman's {cap:g} s at {self._params['resolution']}"
        return reason

    def _home(self) -> Path:
        from interactive_eyes.data.paths import cache_home

        return cache_home() / "omnihuman"

    def build_request(self, item: Item, folder: Path) -> dict[str, Any]:
        from interactive_eyes.baselines.foreign import write_mix, write_reference

        folder.mkdir(parents=True, exist_ok=True)
        ref = write_reference(item, folder)
        mix = write_mix(item, folder)
        req = {"image_url": _data_uri(ref, "image/png"), "audio_url": _data_uri(mix, "audio/wav"),
               "resolution": self._params["resolution"]}
        if item.prompt:
            req["prompt"] = item.prompt
        return req

    def _charge(self, cost: float) -> float:
        """Add ``cost`` to the ledger if it stays within the cap; returns the new total."""
        ledger = self._home() / "spend.json"
        spent = json.loads(ledger.read_text())["spent_usd"] if ledger.is_file() else 0.0
        cap = float(self._params["max_spend_usd"])
        if spent + cost > cap + 1e-9:
            raise RuntimeError(f"{ledger}: spending cap reached ({spent:.2f} + {cost:.2f} USD > max_spend_usd {cap:.2f})")
        ledger.parent.mkdir(parents=True, exist_ok=True)
        tmp = ledger.with_name(".spend.json.tmp")
        tmp.write_text(json.dumps({"spent_usd": round(spent + cost, 6)}))
        os.replace(tmp, ledger)
        return spent + cost

    def generate(self, item: Item, out_path: Path, *, seed: int, job_dir: Path | None = None) -> dict[str, Any]:
        from interactive_eyes.baselines.base import load_reference_frame, load_tracks, mix_tracks
        from interactive_eyes.baselines.geometry import resize
        from interactive_eyes.baselines.normalise import normalise
        from interactive_eyes.media.video import probe

        out_path = Path(out_path)
        job_dir = Path(job_dir) if job_dir is not None else out_path.parent / "jobs" / item.clip_id
        req = self.build_request(item, job_dir / "in")
        key = request_hash(req)
        cached = self._home() / "cache" / f"{key}.mp4"
        facts: dict[str, Any] = {"request_hash": key, "cached": cached.is_file(), "cost_usd": 0.0}
        if not cached.is_file():
            if not self._params["upload_ok"]:
                raise RuntimeError("omnihuman uploads the benchmark image and audio to a third party: "
                                   "pass --param upload_ok=true to agree")
            api_key = os.environ.get(KEY_ENV)
            if not api_key:
                raise RuntimeError(f"{KEY_ENV} is not set: nothing was sent")
            cost = float(self._params["price_per_s"]) * item.duration
            facts.update(cost_usd=round(cost, 4), spent_usd=round(self._charge(cost), 4))
            data = self.transport(req, api_key)
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_name(f".{cached.name}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, cached)
        tracks, rate = load_tracks(item)
        mix, clipped = mix_tracks(tracks)
        fps = probe(cached).fps
        ref = load_reference_frame(item.reference_frame)
        facts.update(normalise(cached, out_path, fps=fps, duration=item.duration, mix=mix, audio_rate=rate,
                               reference=ref, geometry_fn=resize, geometry_path=job_dir / "geometry.json",
                               crf=int(self._params["crf"])))
        facts.update(audio_rate=rate, mix_clipped_samples=clipped, job_dir=str(job_dir))
        return facts
