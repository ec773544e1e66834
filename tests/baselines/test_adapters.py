"""Every foreign-method adapter against a fake upstream (tests/baselines/fake_upstream.py).

For each adapter a fake checkout is built whose entry point is a stand-in script: it asserts
the argv, environment and input files the adapter hands over match the method's documented
contract (spec/baselines.md §2-4), then writes a tiny video with the method's quirks (native
fps, lead-in, crop/resize policy, frame rule, output naming, its own wrong audio). The
adapter's normalised ``<clip>.mp4`` must then have round(fps x T) frames, frame 0 at audio
t = 0 (lead-in dropped: frame j carries code j), the benchmark mix (not the fake's 1 kHz tone),
and a geometry.json whose analytic map agrees with the registration of frame 0.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

import fake_upstream as fu
from interactive_eyes.baselines import METHODS
from interactive_eyes.baselines.base import Item, ItemPerson
from interactive_eyes.media.audio import write_wav

HERE = Path(__file__).parent
RATE = 16000
TONES = (300.0, 500.0)  # person 1 talks in the first half of the clip, person 2 in the second
SINGLE_FACE = (66.0, 30.0, 106.0, 70.0)  # the face box given with the single-person reference
PAIR_FACES = ((30.0, 14.0, 56.0, 44.0), (136.0, 14.0, 162.0, 44.0))

# adapter -> (fake entry name per ENTRY, people, duration s, extra params)
CASES = {
    "multitalk": ("multitalk", 2, 1.2, {}),
    "infinitetalk": ("infinitetalk", 2, 1.2, {}),
    "longcat-avatar": ("longcat", 2, 1.2, {}),
    "bind-your-avatar": ("bya", 2, 1.2, {}),
    "anytalker-official": ("anytalker", 2, 1.2, {}),
    "hallo3": ("hallo3", 1, 1.2, {}),
    "sonic": ("sonic", 1, 1.2, {}),
    "fantasytalking": ("fantasytalking", 1, 1.2, {}),
    "stableavatar": ("stableavatar", 1, 1.2, {}),
    "echomimic": ("echomimic_v1", 1, 1.2, {}),
    "echomimic-v3": ("echomimic_v3", 1, 1.2, {"variant": "v3-flash"}),
    "aniportrait": ("aniportrait", 1, 5.0, {}),
    "omniavatar": ("omniavatar", 1, 1.2, {}),
    "wan-s2v": ("wan_s2v", 1, 1.2, {}),
}


def _stub(path: Path, name: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"import sys\nsys.path.insert(0, {str(HERE)!r})\nimport fake_upstream\nfake_upstream.main({name!r})\n")


def _make_tree(root: Path, files) -> None:
    for f in files:
        p = root / f
        if p.suffix in (".pt", ".pth", ".ckpt", ".safetensors", ".json", ".onnx"):  # a file
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(b"fake")
        else:
            p.mkdir(parents=True, exist_ok=True)


@pytest.fixture(scope="session")
def media(tmp_path_factory):
    """References (two faces 192x96, one face 192x128) and tone tracks of 1.2 s and 5 s."""
    skdata = pytest.importorskip("skimage.data")
    from PIL import Image

    d = tmp_path_factory.mktemp("adapter_media")
    a = skdata.astronaut()
    Image.fromarray(np.concatenate([a, a[:, ::-1]], axis=1)).resize((192, 96), Image.LANCZOS).save(d / "pair.png")
    Image.fromarray(a).resize((192, 128), Image.LANCZOS).save(d / "single.png")
    tracks = {}
    for dur in (1.2, 5.0):
        t = np.arange(int(dur * RATE)) / RATE
        for i, f in enumerate(TONES):
            on = (t < dur / 2) if i == 0 else (t >= dur / 2)
            tracks[(dur, i)] = write_wav(d / f"p{i}_{dur}.wav", (0.3 * np.sin(2 * np.pi * f * t) * on).astype(np.float32), RATE)
    return {"dir": d, "tracks": tracks}


def make_item(media, n_people: int, duration: float, clip_id: str = "clip_a") -> Item:
    faces = PAIR_FACES if n_people == 2 else (SINGLE_FACE,)
    people = tuple(ItemPerson(role=("left", "right")[i], audio=Path(media["tracks"][(duration, i)]), face_box=faces[i])
                   for i in range(n_people))
    ref = media["dir"] / ("pair.png" if n_people == 2 else "single.png")
    return Item(clip_id=clip_id, duration=duration, people=people, prompt="two people talk", reference_frame=ref)


def configure(method_name: str, root: Path, fake: str, extra: dict | None = None, monkeypatch=None):
    """A fake checkout + weights folder for the adapter and the method instance pointing at them."""
    cls = METHODS.get(method_name)
    probe = cls(**(extra or {}))
    repo, weights = root / "repo", root / "weights"
    _stub(repo / probe.ENTRY, fake)
    _make_tree(repo, probe.REPO_FILES)
    _make_tree(weights, probe.WEIGHT_FILES)
    if method_name == "multitalk":  # the Wan base must hold its own index, replaced by MultiTalk's
        _make_tree(weights, ["Wan2.1-I2V-14B-480P/diffusion_pytorch_model.safetensors.index.json",
                             "Wan2.1-I2V-14B-480P/shard-00001.safetensors"])
    params = {"repo": str(repo), "python": sys.executable, "weights": str(weights), **(extra or {})}
    if "weights" not in cls.CONFIG_KEYS:
        params.pop("weights")
    m = cls(**params)
    assert m.missing() == [], m.missing()
    return m


def decode(path: Path):
    from interactive_eyes.media.audio import load_audio
    from interactive_eyes.media.video import probe, read_frames

    frames, _ = read_frames(path)
    return probe(path), frames, load_audio(path, sample_rate=RATE)


def tone_power(x: np.ndarray, f: float) -> float:
    t = np.arange(x.size) / RATE
    return float(np.abs(np.dot(x, np.exp(-2j * np.pi * f * t))) ** 2 / x.size)


@pytest.mark.parametrize("case", sorted(CASES))
def test_adapter_against_fake_upstream(case, media, tmp_path, monkeypatch):
    fake, n_people, duration, extra = CASES[case]
    name = "echomimic" if case.startswith("echomimic") else case
    record = tmp_path / "record.json"
    monkeypatch.setenv("FAKE_RECORD", str(record))
    monkeypatch.setenv("FAKE_FACE", json.dumps(SINGLE_FACE))
    monkeypatch.setenv("PYTHONPATH", "/nowhere")  # must not reach the method's environment
    if name == "bind-your-avatar":
        import interactive_eyes.baselines.bind_your_avatar as bya

        feat = tmp_path / "features_stub.py"
        _stub(feat, "bya_features")
        monkeypatch.setattr(bya, "FEATURES", feat)
    m = configure(name, tmp_path, fake, extra)
    item = make_item(media, n_people, duration)
    assert m.check(item) is None
    out = tmp_path / "run" / f"{item.clip_id}.mp4"
    info = m.generate(item, out, seed=42)

    fps = m.fps()
    n = round(fps * duration)
    vi, frames, audio = decode(out)
    # frame count and rate: exactly round(fps * T) at the native fps
    assert vi.fps == pytest.approx(fps) and vi.n_frames == n == len(frames) == info["frames"]
    # t = 0: frame 0 is the reference (no lead-in grey, code-free), frame j carries code j
    valid = info["valid_frames"]
    codes = [fu.read_code(f) for f in frames[1:]]
    assert codes == [min(j, valid - 1) for j in range(1, n)], (codes, valid)
    assert info["padded_frames"] == n - valid
    # the mix (both tones, in their halves), not the fake's own 1 kHz tone
    half = audio.size // 2
    p1, p2 = [tone_power(audio[:half], f) for f in TONES], [tone_power(audio[half:], f) for f in TONES]
    assert p1[0] > 50 * p1[1], (p1, p2)
    if n_people == 2:
        assert p2[1] > 50 * p2[0], (p1, p2)
    else:  # only the left person's track: the second half is silent
        assert p2[0] < 1e-3 * p1[0] and p2[1] < 1e-3 * p1[0], (p1, p2)
    assert tone_power(audio, fu.OWN_TONE_HZ) < 1e-3 * tone_power(audio, TONES[0])
    assert vi.has_audio and abs(vi.audio_duration - duration) < 0.1
    # geometry: analytic map checked by registering frame 0; both agree within 2 px
    geo = json.loads((tmp_path / "run" / "jobs" / item.clip_id / "geometry.json").read_text())
    assert geo == info["geometry"] and geo["use"] == "analytic", geo
    assert geo["disagreement_px"] < 2.0 and geo["analytic_residual"] < 12.0, geo
    # the raw file is kept untouched in the job folder
    raw = Path(info["raw"])
    assert raw.is_file() and raw.is_relative_to(tmp_path / "run" / "jobs" / item.clip_id)
    from interactive_eyes.download import sha256_file

    assert sha256_file(raw) == info["job"]["sha256"]
    if name in ("multitalk", "infinitetalk"):  # bbox [top, left, bottom, right] from the face boxes
        boxes = json.loads(record.read_text())["bbox"]
        for (top, left, bottom, right), (x1, y1, x2, y2) in zip(boxes, PAIR_FACES):
            assert left <= x1 < x2 <= right and top <= y1 < y2 <= bottom


def test_policies_match_the_spec():
    expect = {"multitalk": "cover_crop", "infinitetalk": "cover_crop", "hallo3": "cover_crop", "omniavatar": "cover_crop",
              "anytalker-official": "resize", "sonic": "resize", "stableavatar": "cover_crop", "aniportrait": "cover_crop"}
    for name, policy in expect.items():
        assert METHODS.get(name).GEOMETRY == policy, name
    assert METHODS.get("echomimic")().GEOMETRY == "box_crop"


def test_unsupported_items_are_decided_without_launching(media):
    item2, item1 = make_item(media, 2, 1.2), make_item(media, 1, 1.2)
    assert "handles at most 1" in METHODS.get("sonic")().check(item2)
    assert "below aniportrait's minimum 5 s" in METHODS.get("aniportrait")().check(item1)
    assert "needs exactly 2" in METHODS.get("bind-your-avatar")().check(item1)
    long = Item(clip_id="long", duration=3.0, people=item2.people, reference_frame=item2.reference_frame)
    assert "above bind-your-avatar's maximum 1.96 s" in METHODS.get("bind-your-avatar")().check(long)  # never truncated
    three = Item(clip_id="three", duration=1.2, people=item2.people + item2.people[:1], reference_frame=item2.reference_frame)
    assert "handles at most 2" in METHODS.get("multitalk")().check(three)
    assert "3 people speak" in METHODS.get("longcat-avatar")().check(three)


def test_longcat_segments_and_latest_continuation(tmp_path):
    from interactive_eyes.baselines.longcat_avatar import _latest, segments_for

    assert [segments_for(n) for n in (1, 93, 94, 173, 174)] == [1, 1, 2, 2, 3]  # 93 + 80 (k - 1) frames
    out = tmp_path / "out"
    out.mkdir()
    for name in ("ai2v_demo_1.mp4", "video_continue_2.mp4", "video_continue_10.mp4", "video_continue_9.mp4"):
        (out / name).write_bytes(b"")
    assert _latest(tmp_path).name == "video_continue_10.mp4"  # numeric, not lexical, order


def test_silent_extra_people_go_to_bbox_others(media, tmp_path):
    """LongCat: a third person whose track is silent stays silent (bbox.others), the two speakers
    keep person1/person2 left to right; the segment count covers the clip (prepare only, no launch)."""
    from interactive_eyes.baselines.runner import Job

    silent = write_wav(tmp_path / "silent.wav", np.zeros(int(5.0 * RATE), np.float32), RATE)
    item = make_item(media, 2, 5.0)
    mid = ItemPerson(role="middle", audio=Path(silent), face_box=(90.0, 14.0, 110.0, 44.0))
    three = Item(clip_id="three", duration=5.0, people=(item.people[0], mid, item.people[1]),
                 reference_frame=item.reference_frame)
    m = configure("longcat-avatar", tmp_path, "longcat")
    assert m.check(three) is None
    job = Job(argv=[], job_dir=tmp_path / "job")
    job.inputs.mkdir(parents=True)
    inv = m.prepare_job(three, job, 1)
    doc = json.loads((job.inputs / "input.json").read_text())
    assert list(doc["cond_audio"]) == ["person1", "person2"]
    assert doc["cond_audio"]["person2"].endswith("person3.wav")  # the right person's track
    boxes = doc["bbox"]
    assert len(boxes["others"]) == 4 and boxes["person1"][1] < boxes["others"][1] < boxes["person2"][1]
    assert inv.facts["num_segments"] == 2  # 125 frames at 25 fps: 93 + 80
    assert inv.argv[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1"]


def test_not_configured_lists_what_is_missing(tmp_path):
    m = METHODS.get("multitalk")(repo=str(tmp_path), python=str(tmp_path / "nope"), weights=str(tmp_path))
    miss = m.missing()
    assert any(s.startswith("repo: ") and "generate_multitalk.py not found" in s for s in miss)
    assert any(s.startswith("python: ") for s in miss)
    assert any(s.endswith("MeiGen-MultiTalk/multitalk.safetensors missing") for s in miss)
    assert METHODS.get("hallo3")().missing() == ["repo: not set", "python: not set"]


def test_fps_mismatch_is_an_error(media, tmp_path, monkeypatch):
    """AnyTalker without --sample_fps 24 writes 16 fps: normalisation refuses it rather than resample."""
    from interactive_eyes.baselines.normalise import NormaliseError, normalise

    raw = tmp_path / "raw.mp4"
    fu.emit(raw, np.zeros((32, 64, 3), np.uint8), 16, 10)
    with pytest.raises(NormaliseError, match=r"raw.mp4: 16 fps, but the method's native rate is 24 fps"):
        normalise(raw, tmp_path / "o.mp4", fps=24, duration=0.5, mix=np.zeros((8000, 1), np.float32), audio_rate=16000)


def test_failed_job_is_retried_once_but_not_more(media, tmp_path, monkeypatch):
    rec = tmp_path / "launches"
    monkeypatch.setenv("FAKE_RECORD", str(rec))
    m = configure("sonic", tmp_path, "flaky")
    info = m.generate(make_item(media, 1, 1.2), tmp_path / "run" / "c.mp4", seed=0)
    assert rec.read_text() == "2" and info["job"]["attempts"] == 2 and info["frames"] == 30
    from interactive_eyes.baselines.runner import JobFailed

    rec.unlink()
    m0 = METHODS.get("sonic")(**{**m.params(), "retries": 0})
    with pytest.raises(JobFailed, match="NCCL timeout") as err:
        m0.generate(make_item(media, 1, 1.2, clip_id="clip_b"), tmp_path / "run" / "b.mp4", seed=0)
    assert err.value.details["attempts"] == 1 and rec.read_text() == "1"
