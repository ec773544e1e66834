"""fetch: the release through a mocked transport (verified, resumed, rejected, atomic, offline),
and the YouTube steps on local stand-in sources (alignment, refusal, frames, missing extra)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import urllib.error
import wave
from pathlib import Path

import numpy as np
import pytest

from interactive_eyes.data import fetch, manifest, release

RATE = 48000
COMMIT = "0123456789abcdef0123456789abcdef01234567"


# --------------------------------------------------------------------------- a tiny release


def speech_like(seconds: float, seed: int, rate: int = RATE) -> np.ndarray:
    """Noise shaped into ~4 Hz syllables with pauses: unique (one clear correlation peak)."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    env = np.clip(np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, 6)), 0, None) ** 2
    return (0.3 * rng.standard_normal(n) * env).astype(np.float32)


def wav_bytes(stereo_int16: np.ndarray) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(np.ascontiguousarray(stereo_int16, dtype="<i2").tobytes())
    return buf.getvalue()


def make_release(duration: float = 5.0, t0: float = 1.0):
    """A one-clip release: two 48 kHz stereo WAV tracks (left speaks first), an annotation file,
    and the manifest describing them (file and PCM hashes computed here, independently)."""
    n = int(duration * RATE)
    half = n // 2
    left = np.zeros(n, np.float32)
    right = np.zeros(n, np.float32)
    left[:half] = speech_like(half / RATE, 1)
    right[half:] = speech_like((n - half) / RATE, 2)
    files, people = {}, []
    for role, mono, seg in (("left", left, [0.0, half / RATE]), ("right", right, [half / RATE, duration])):
        pcm = np.round(np.repeat(mono[:, None], 2, axis=1) * 32767).astype("<i2")
        rel = f"audio_{role}/demo_1_{role}.wav"
        files[rel] = wav_bytes(pcm)
        people.append({
            "role": role, "audio": rel, "speaking": [seg],
            "audio_sha256": hashlib.sha256(files[rel]).hexdigest(),
            "pcm_sha256": hashlib.sha256(pcm.tobytes()).hexdigest(),  # the PCM hash's definition
            "sample_rate": RATE, "channels": 2, "n_samples": n,
        })
    files["speaker_duration.json"] = json.dumps({"demo_1.mp4": {"left": [[0.0, 2.15]], "right": [[2.15, 5.0]]}}).encode()
    data = {
        "schema": manifest.SCHEMA, "schema_version": manifest.SCHEMA_VERSION, "name": "demo", "version": "1",
        "source": {"repository": "example/release", "commit": COMMIT, "folder": "benchmark",
                   "annotation_file": "speaker_duration.json",
                   "annotation_sha256": hashlib.sha256(files["speaker_duration.json"]).hexdigest()},
        "clips": [{"id": "demo_1", "duration": duration, "video": "demo_1.mp4",
                   "reference": {"youtube_id": "demoYT", "time": t0}, "people": people}],
    }
    bench = manifest.parse(data)
    urls = {fetch.release_url(bench, rel): body for rel, body in files.items()}
    return bench, files, urls, (left, right)


class FakeTransport:
    """Serves bytes by URL from ``start``; records every (url, start) asked for."""

    def __init__(self, files: dict[str, bytes], *, break_after: dict[str, int] | None = None, watch=None):
        self.files = files
        self.break_after = break_after or {}
        self.calls: list[tuple[str, int]] = []
        self.watch = watch  # called on every read: lets a test look at the disk mid-download

    def open(self, url, start=0):
        self.calls.append((url, start))
        if url not in self.files:
            raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)
        data = self.files[url]
        limit = self.break_after.get(url)
        return _Stream(data[start:], None if limit is None else max(0, limit - start), self.watch), len(data)


class _Stream:
    def __init__(self, data, break_at, watch):
        self.buf, self.break_at, self.watch, self.pos = data, break_at, watch, 0

    def read(self, n=-1):
        if self.watch:
            self.watch()
        if self.break_at is not None and self.pos >= self.break_at:
            raise ConnectionResetError("connection reset by peer")
        end = len(self.buf) if n < 0 else self.pos + n
        if self.break_at is not None:
            end = min(end, self.break_at)
        out, self.pos = self.buf[self.pos : end], min(end, len(self.buf))
        return out

    def close(self):
        pass


class OfflineTransport:
    def __init__(self):
        self.calls = []

    def open(self, url, start=0):
        self.calls.append(url)
        raise urllib.error.URLError(OSError(-3, "Temporary failure in name resolution"))


def leftovers(root: Path) -> list[str]:
    """Files under root other than the downloader's empty lock files."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and not p.name.endswith(".lock"))


# --------------------------------------------------------------------------- plan


def test_plan_of_the_shipped_manifest():
    bench = manifest.load()
    plan = fetch.plan_release(bench)
    assert [p.kind for p in plan].count("audio") == 58
    assert [(p.relpath, p.kind) for p in plan if p.kind != "audio"] == [
        ("speaker_duration.json", "annotation"), ("interact_11.mp4", "video")]
    for p in plan:  # raw files of the pinned commit, as the release module spells them
        assert p.url == release.file_url(p.relpath)
        assert f"/HKUST-C4G/AnyTalker/{release.COMMIT}/benchmark/" in p.url
    assert len(fetch.plan_release(bench, clips=["interact_3"])) == 3  # annotation + 2 tracks


def test_plan_hashes_are_the_released_ones(ie_root):
    want = release.read_sha256_list(ie_root / "original_sha256.txt")
    plan = fetch.plan_release(manifest.load())
    assert {p.relpath: p.sha256 for p in plan} == want


# --------------------------------------------------------------------------- release downloads


def test_download_verifies_and_then_skips_verified_files(tmp_path):
    bench, files, urls, _ = make_release()
    t = FakeTransport(urls)
    report = fetch.fetch_release(tmp_path, bench, transport=t, progress=False)
    assert report.ok and report.count("downloaded") == 3
    for rel, body in files.items():
        assert (tmp_path / rel).read_bytes() == body
    assert leftovers(tmp_path) == sorted(files)  # no .part left
    n_calls = len(t.calls)
    again = fetch.fetch_release(tmp_path, bench, transport=t, progress=False)
    assert again.ok and again.count("present") == 3 and len(t.calls) == n_calls  # nothing fetched


def test_resume_from_a_partial_part_file(tmp_path):
    bench, files, urls, _ = make_release()
    rel = "audio_left/demo_1_left.wav"
    part = tmp_path / (rel + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(files[rel][:10000])
    t = FakeTransport(urls)
    assert fetch.fetch_release(tmp_path, bench, transport=t, progress=False).ok
    assert (fetch.release_url(bench, rel), 10000) in t.calls  # asked only for the rest
    assert (tmp_path / rel).read_bytes() == files[rel] and not part.exists()


def test_interrupted_download_keeps_the_part_and_resumes_next_run(tmp_path):
    bench, files, urls, _ = make_release()
    rel = "audio_right/demo_1_right.wav"
    url = fetch.release_url(bench, rel)
    broken = FakeTransport(urls, break_after={url: 30000})
    report = fetch.fetch_release(tmp_path, bench, transport=broken, progress=False, retries=0)
    (bad,) = report.failures
    assert url in bad.reason and str(tmp_path / rel) in bad.reason and "resume" in bad.reason
    assert not (tmp_path / rel).exists()
    assert (tmp_path / (rel + ".part")).stat().st_size == 30000
    good = FakeTransport(urls)
    assert fetch.fetch_release(tmp_path, bench, transport=good, progress=False).ok
    assert good.calls == [(url, 30000)]
    assert (tmp_path / rel).read_bytes() == files[rel]


def test_checksum_mismatch_rejects_the_file(tmp_path):
    bench, files, urls, _ = make_release()
    rel = "audio_left/demo_1_left.wav"
    url = fetch.release_url(bench, rel)
    tampered = dict(urls)
    tampered[url] = files[rel][:-1] + bytes([files[rel][-1] ^ 1])
    report = fetch.fetch_release(tmp_path, bench, transport=FakeTransport(tampered), progress=False, backoff=0)
    (bad,) = report.failures
    assert "rejected" in bad.reason and "sha256" in bad.reason and url in bad.reason
    assert str(tmp_path / rel) in bad.reason and "\n" not in bad.reason
    assert rel not in leftovers(tmp_path) and rel + ".part" not in leftovers(tmp_path)
    assert report.count("downloaded") == 2  # the other files are unaffected


def test_target_appears_only_complete(tmp_path):
    """While bytes arrive they go to the .part; the target path is created by the final rename."""
    bench, files, urls, _ = make_release()
    rel = "audio_left/demo_1_left.wav"
    seen = []
    t = FakeTransport(urls, watch=lambda: seen.append((tmp_path / rel).exists()))
    assert fetch.fetch_release(tmp_path, bench, transport=t, progress=False, clips=["demo_1"]).ok
    assert seen and not any(seen[: len(seen) // 3])  # never there mid-download of the first file
    assert (tmp_path / rel).read_bytes() == files[rel]


def test_offline_every_failure_names_url_and_target_and_leaves_nothing(tmp_path):
    bench, files, urls, _ = make_release()
    t = OfflineTransport()
    report = fetch.fetch_release(tmp_path, bench, transport=t, progress=False, backoff=0)
    assert not report.ok and len(report.failures) == len(files)
    for item in report.items:
        assert item.status == "failed"
        assert fetch.release_url(bench, item.what) in item.reason and item.target in item.reason
        assert "\n" not in item.reason
    assert leftovers(tmp_path) == []  # no target, no .part
    # the first file is retried (RETRIES), the rest tried once each: a dead network costs no back-off
    assert len(t.calls) == fetch.RETRIES + 1 + (len(files) - 1)


def test_lossless_copies_of_the_shared_data_count_as_present(ie_root, tmp_path):
    """The shared root (FLAC copies + the released annotation and video) needs no download."""
    root = tmp_path / "root"
    for p in ie_root.rglob("*"):
        if p.is_file():
            (root / p.relative_to(ie_root)).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(p, root / p.relative_to(ie_root))
    t = FakeTransport({})
    report = fetch.fetch_release(root, manifest.load(), transport=t, progress=False)
    assert report.ok and report.count("present") == 60 and t.calls == []


# --------------------------------------------------------------------------- YouTube steps


def test_missing_yt_dlp_is_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "yt_dlp", None)  # import fails even where it is installed
    bench, *_ = make_release()
    with pytest.raises(fetch.MissingExtraError) as err:
        fetch.fetch_youtube(tmp_path, bench, frames=True)
    assert "ie-bench[youtube]" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(fetch.MissingExtraError):
        fetch.resolve_youtube("K9wBEUaTEQU")


FPS = 25


def encode_index(i: int) -> np.ndarray:
    """A flat 64x48 frame whose colour spells its index (robust to H.264 + yuv420)."""
    rgb = np.empty((48, 64, 3), np.uint8)
    rgb[..., 0] = (i // 16) * 16 + 8
    rgb[..., 1] = (i % 16) * 16 + 8
    rgb[..., 2] = 128
    return rgb


def decode_index(rgb: np.ndarray) -> int:
    r, g = rgb[..., 0].mean(), rgb[..., 1].mean()
    return int(round((r - 8) / 16)) * 16 + int(round((g - 8) / 16))


def make_source(path: Path, audio: np.ndarray, seconds: float) -> Path:
    """A stand-in for the YouTube video: numbered frames at 25 fps, the given 48 kHz audio (AAC)."""
    from interactive_eyes.media.video import write_video

    n = int(round(seconds * FPS))
    return write_video(path, (encode_index(i) for i in range(n)), FPS, audio=audio, audio_rate=RATE)


def release_root(tmp_path, files) -> Path:
    root = tmp_path / "root"
    for rel, body in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(body)
    return root


def test_ground_truth_clip_is_cut_where_the_released_audio_starts(tmp_path):
    bench, files, _, (left, right) = make_release(duration=5.0, t0=1.0)
    root = release_root(tmp_path, files)
    true_start = 1.37  # the reference time says 1 s; the dialogue really starts 0.37 s later
    lead = speech_like(true_start, 9) * 0.5  # other talk before the clip
    tail = speech_like(2.0, 10) * 0.5
    src = make_source(tmp_path / "src.mp4", np.concatenate([lead, left + right, tail]), true_start + 5.0 + 2.0)
    streams = fetch.SourceStreams(video=str(src), audio=str(src))
    items = fetch.fetch_youtube(root, bench, frames=False, videos=True, resolver=lambda yt: streams)
    assert [i.status for i in items] == ["downloaded"], items
    rec = json.loads((root / "demo_1.align.json").read_text())
    assert rec["offset"] == pytest.approx(0.37, abs=2e-3)  # AAC frame timing: well under a frame
    assert rec["correlation_peak"] > 0.9 and rec["n_frames"] == 5 * FPS

    from interactive_eyes.media.audio import load_audio
    from interactive_eyes.media.video import probe, read_frames

    info = probe(root / "demo_1.mp4")
    assert info.n_frames == 5 * FPS and info.fps == pytest.approx(FPS)
    frames, _ = read_frames(root / "demo_1.mp4")
    # first frame: the source frame at 1.37 s (frame 34 starts at 1.36 s, within half a frame)
    assert [decode_index(f) for f in frames[:3]] == [34, 35, 36]
    # and its audio starts with the released dialogue
    from interactive_eyes.data.align import find_offset

    out_audio = load_audio(root / "demo_1.mp4", 16000)
    mix = fetch.released_mix(root, bench.clip("demo_1"))
    found = find_offset(np.concatenate([np.zeros(1600, np.float32), out_audio]), mix[: 3 * 16000], 16000)
    assert abs(found.offset - 0.1) < 2e-3


def test_source_without_the_released_audio_is_refused(tmp_path):
    bench, files, *_ = make_release(duration=5.0, t0=1.0)
    root = release_root(tmp_path, files)
    src = make_source(tmp_path / "src.mp4", speech_like(8.0, 11), 8.0)  # some other conversation
    streams = fetch.SourceStreams(video=str(src), audio=str(src))
    (item,) = fetch.fetch_youtube(root, bench, frames=False, videos=True, resolver=lambda yt: streams)
    assert item.status == "failed" and "no clear alignment" in item.reason and "demo_1" in item.reason
    assert not (root / "demo_1.mp4").exists() and not (root / "demo_1.align.json").exists()


def test_reference_frame_is_the_frame_at_the_reference_time(tmp_path):
    bench, files, *_ = make_release(duration=5.0, t0=1.0)
    root = release_root(tmp_path, files)
    src = make_source(tmp_path / "src.mp4", np.zeros(3 * RATE, np.float32), 3.0)
    streams = fetch.SourceStreams(video=str(src), audio=str(src))
    (item,) = fetch.fetch_youtube(root, bench, frames=True, resolver=lambda yt: streams)
    assert item.status == "downloaded"
    from PIL import Image

    png = fetch.reference_frame_path(root, "demo_1")
    assert png == root / "frames" / "demo_1.png"
    assert decode_index(np.asarray(Image.open(png).convert("RGB"))) == 1 * FPS
    (again,) = fetch.fetch_youtube(root, bench, frames=True, resolver=lambda yt: streams)
    assert again.status == "present"


def test_clip_without_a_source_is_skipped_with_the_reason(tmp_path):
    def resolver(yt):
        raise AssertionError("interact_10 has no source: nothing to resolve")

    items = fetch.fetch_youtube(tmp_path, manifest.load(), clips=["interact_10"], frames=True, videos=True,
                                resolver=resolver)
    assert [i.status for i in items] == ["skipped", "skipped"]
    assert all("no source" in i.reason for i in items)


def test_released_ground_truth_is_never_cut_from_youtube(tmp_path):
    """interact_11's real video comes with the release (sha256-pinned); --videos leaves it alone."""
    def resolver(yt):
        raise AssertionError("nothing to resolve for a released video")

    (item,) = fetch.fetch_youtube(tmp_path, manifest.load(), clips=["interact_11"], frames=False, videos=True,
                                  resolver=resolver)
    assert item.status == "skipped" and "release ships" in item.reason
    assert not (tmp_path / "interact_11.mp4").exists()


def test_missing_tracks_fail_the_video_step_with_the_path(tmp_path):
    bench, files, *_ = make_release(duration=5.0, t0=1.0)
    src = make_source(tmp_path / "src.mp4", speech_like(8.0, 12), 8.0)
    streams = fetch.SourceStreams(video=str(src), audio=str(src))
    (item,) = fetch.fetch_youtube(tmp_path / "empty", bench, frames=False, videos=True, resolver=lambda yt: streams)
    assert item.status == "failed" and "demo_1_left.wav" in item.reason and "not found" in item.reason
