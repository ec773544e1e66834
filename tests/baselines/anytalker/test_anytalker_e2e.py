"""``ie-bench run --method anytalker`` end to end on the CPU with tiny random weights of every network.

Every file is written in its original format (tiny_anytalker.py, tiny_encoders.py) and loaded by
the real loaders through ``--param ckpt_dir``. Checks: two real benchmark clips (interact_11 with
its real reference frame 2p-0.png, interact_25 with 2p-1.png) and a 3-person item give 24 fps
videos of the contract's frame count (round(24 T)) of which the first 4n+1 (spec §9.2) are
generated, at the §9.1 size, with the benchmark mix muxed; run.json records it; ``ie-bench score``
accepts the folder; the same seed twice gives byte-identical frames.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from interactive_eyes.app.cli import main

pytestmark = pytest.mark.slow
SIZE = "128*64"  # area budget 8192: 852x480 -> 64x96 (latent 8x12), see test_size_rule_of_the_tiny_budget
STEPS = 2


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: on a shared 2-core machine torch's default thread pool oversubscribes
    the CPU and the causal VAE (hundreds of small convolutions) gets ~15x slower, not faster."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    pytest.importorskip("diffusers")
    pytest.importorskip("transformers")
    from tiny_anytalker import write_tiny_checkpoints

    return write_tiny_checkpoints(tmp_path_factory.mktemp("anytalker_ckpt"))


def _params(ckpt, **extra) -> list[str]:
    kv = {"ckpt_dir": str(ckpt["root"]), "model_configs": str(ckpt["model_configs"]), "steps": STEPS, "size": SIZE,
          **extra}
    out = []
    for k, v in kv.items():
        out += ["--param", f"{k}={v}"]
    return out


def _run(args) -> object:
    res = CliRunner().invoke(main, ["run", "--method", "anytalker", "--quiet", *args])
    return res


def _frames(path: Path) -> np.ndarray:
    from interactive_eyes.media.video import read_frames

    return read_frames(path)[0]


def test_size_rule_of_the_tiny_budget():
    from interactive_eyes.baselines.anytalker.shapes import output_size, parse_size

    # worked by hand from spec §9.1: r = 480/852; lat_h = floor(floor(67.9 / 8) / 2) * 2 = 8 -> h0 = 64,
    # lat_w = floor(floor(120.6 / 8) / 2) * 2 = 14 -> w0 = 112; candidates (32, 96) [L1 48] and (64, 96) [L1 16]
    assert output_size(480, 852, parse_size(SIZE)) == (64, 96)


@pytest.fixture(scope="module")
def benchmark_run(ckpt, test_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("anytalker_run")
    frames = tmp / "frames"
    frames.mkdir()
    images = test_data / "anytalker_examples" / "images"
    shutil.copy(images / "2p-0.png", frames / "interact_11.png")
    shutil.copy(images / "2p-1.png", frames / "interact_25.png")
    out = tmp / "out"
    res = _run(["--out", str(out), "--clips", "interact_11,interact_25", "--root", str(test_data / "interactive_eyes"),
                "--reference-frames", str(frames), "--seed", "7", *_params(ckpt)])
    return {"res": res, "out": out, "frames": frames, "root": test_data / "interactive_eyes"}


def test_two_benchmark_clips(benchmark_run):
    from interactive_eyes.data import manifest
    from interactive_eyes.media.audio import load_audio
    from interactive_eyes.media.video import probe

    res, out = benchmark_run["res"], benchmark_run["out"]
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "run.json").read_text())
    assert doc["method"] == "anytalker" and doc["seed"] == 7 and doc["params"]["steps"] == STEPS
    assert doc["counts"]["ok"] == 2
    bench = manifest.load(None)
    for cid in ("interact_11", "interact_25"):
        clip = bench.clip(cid)
        info = doc["clips"][cid]["info"]
        # spec §9.2: F = ((ceil(24 T) - 1) // 4) * 4 + 1; interact_11 (8.597 s) -> ceil 207 -> 205
        expected_generated = ((math.ceil(clip.duration * 24) - 1) // 4) * 4 + 1
        if cid == "interact_11":
            assert expected_generated == 205
        assert info["generated_frames"] == expected_generated
        assert info["frames"] == int(math.floor(clip.duration * 24 + 0.5))  # the contract: round(24 T)
        assert info["padded_frames"] == info["frames"] - expected_generated
        assert info["vocal_separation"] is False and info["steps"] == STEPS and len(info["seconds_per_step"]) == STEPS
        assert info["weights"]["anytalker_1_3b_dit"]["sha256"]
        v = probe(out / f"{cid}.mp4")
        assert v.fps == pytest.approx(24) and v.n_frames == info["frames"]
        assert (v.width, v.height) == (96, 64)  # both reference frames are wider than 16:10
        assert v.has_audio
        # the benchmark mix (plain sum of the tracks) is muxed: AAC keeps its level and envelope
        mux = load_audio(out / f"{cid}.mp4", 16000)
        mix = sum(load_audio(benchmark_run["root"] / p.audio.replace(".wav", ".flac"), 16000) for p in clip.people)
        n = min(len(mux), len(mix)) - 4000
        lag = 1024 * 16000 // 48000  # AAC priming is trimmed by the decoder; compare with a small search
        best = max(np.corrcoef(mux[s:s + n], mix[:n])[0, 1] for s in range(0, lag + 1, 1))
        assert best > 0.97
        assert np.sqrt(np.mean(mux[:n] ** 2)) == pytest.approx(np.sqrt(np.mean(mix[:n] ** 2)), rel=0.1)


def test_generated_frames_are_not_padding_of_one_image(benchmark_run):
    frames = _frames(benchmark_run["out"] / "interact_11.mp4")
    # the decoded latent changes over time (random DiT); only the last padded frames repeat
    assert np.abs(frames[0].astype(int) - frames[100].astype(int)).mean() > 1.0
    assert np.array_equal(frames[-1], frames[-2]) or frames.shape[0] == 205


def test_score_accepts_the_folder(benchmark_run, test_data):
    out = benchmark_run["out"]
    res = CliRunner().invoke(main, ["score", str(out), "--metrics", "interactivity", "--clips",
                                    "interact_11,interact_25", "--root", str(benchmark_run["root"])])
    assert res.exit_code in (0, 1), res.output  # 1: the tiny model draws no faces, interactivity fails per clip
    text = res.output.lower()
    assert "duration" not in text and "frame rate" not in text and "missing file" not in text, res.output


def test_same_seed_gives_identical_frames(ckpt, benchmark_run, tmp_path):
    out = tmp_path / "again"
    res = _run(["--out", str(out), "--clips", "interact_11", "--root", str(benchmark_run["root"]),
                "--reference-frames", str(benchmark_run["frames"]), "--seed", "7", *_params(ckpt)])
    assert res.exit_code == 0, res.output
    first = json.loads((benchmark_run["out"] / "run.json").read_text())["clips"]["interact_11"]["info"]
    again = json.loads((out / "run.json").read_text())["clips"]["interact_11"]["info"]
    # byte-identical generated frames (sha256 of the uint8 frames before encoding)
    assert again["frames_sha256"] == first["frames_sha256"]
    assert again["face_boxes_xyxy"] == first["face_boxes_xyxy"]
    # the files: libx264 with threads is not bit-reproducible under CPU contention (measured: up to 7
    # distinct files of 8 identical encodes), so the decoded videos are compared to H.264 noise only
    a = _frames(benchmark_run["out"] / "interact_11.mp4").astype(int)
    b = _frames(out / "interact_11.mp4").astype(int)
    assert a.shape == b.shape and np.abs(a - b).mean() < 1.0


def test_generated_frames_hash_changes_with_the_seed(ckpt, benchmark_run, tmp_path):
    out = tmp_path / "seed8"
    res = _run(["--out", str(out), "--clips", "interact_25", "--root", str(benchmark_run["root"]),
                "--reference-frames", str(benchmark_run["frames"]), "--seed", "8", *_params(ckpt)])
    assert res.exit_code == 0, res.output
    first = json.loads((benchmark_run["out"] / "run.json").read_text())["clips"]["interact_25"]["info"]
    other = json.loads((out / "run.json").read_text())["clips"]["interact_25"]["info"]
    assert other["frames_sha256"] != first["frames_sha256"]  # the fingerprint is not a constant


def test_three_people_custom_manifest(ckpt, test_data, tmp_path):
    from PIL import Image

    ex = test_data / "anytalker_examples"
    left = Image.open(ex / "images" / "2p-0.png").convert("RGB")  # 852x480, two people
    other = Image.open(ex / "images" / "2p-1.png").convert("RGB")  # 1536x1024, two people
    third = other.crop((0, 0, other.width // 2, other.height)).resize((360, 480))  # its left person
    trio = Image.new("RGB", (852 + 360, 480))
    trio.paste(left, (0, 0))
    trio.paste(third, (852, 0))
    frames = tmp_path / "frames"
    frames.mkdir()
    trio.save(frames / "trio.png")
    tracks = ["audios/2p-0-left.flac", "audios/2p-0-right.flac", "audios/2p-1-left.flac"]
    man = {"schema": "ie-bench/manifest", "schema_version": 1, "name": "trio", "version": "1",
           "clips": [{"id": "trio", "duration": 2.0, "prompt": "Three people are talking.",
                      "people": [{"role": f"p{i}", "audio": a, "speaking": [[0.0, 2.0]] if i == 0 else [[0.0, 0.0]]}
                                 for i, a in enumerate(tracks)]}]}
    mpath = tmp_path / "trio.json"
    mpath.write_text(json.dumps(man))
    out = tmp_path / "out"
    res = _run(["--out", str(out), "--manifest", str(mpath), "--root", str(ex), "--reference-frames", str(frames),
                *_params(ckpt)])
    assert res.exit_code == 0, res.output
    info = json.loads((out / "run.json").read_text())["clips"]["trio"]["info"]
    assert len(info["face_boxes_xyxy"]) == 3
    xs = [b[0] for b in info["face_boxes_xyxy"]]
    assert xs == sorted(xs) and xs[2] > 852  # left to right; the third face is the pasted one
    assert info["generated_frames"] == 45 and info["frames"] == 48  # 2 s: ceil 48 -> 45; round(48) = 48


def test_fewer_faces_than_tracks_fails_the_clip(ckpt, test_data, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    from PIL import Image

    Image.new("RGB", (320, 180), (128, 128, 128)).save(frames / "interact_11.png")  # nobody
    out = tmp_path / "out"
    res = _run(["--out", str(out), "--clips", "interact_11", "--root", str(test_data / "interactive_eyes"),
                "--reference-frames", str(frames), *_params(ckpt)])
    assert res.exit_code == 1, res.output
    e = json.loads((out / "run.json").read_text())["clips"]["interact_11"]
    assert e["status"] == "failed" and "FaceBindingError" in e["reason"] and "0 face(s)" in e["reason"]


def test_offload_keeps_only_the_running_network_on_the_device(ckpt, test_data):
    """With offload, each network is moved to the device for its own stage and back (``_use`` /
    ``_done``): while the DiT samples, the text encoder, CLIP, the VAE and wav2vec2 are off it. On
    the CPU device and home coincide, so the moves are recorded rather than seen in memory. The
    frames are the same as without offloading."""
    from PIL import Image

    from interactive_eyes.baselines.anytalker.files import locate
    from interactive_eyes.baselines.anytalker.pipeline import AnyTalkerPipeline

    pipe = AnyTalkerPipeline.from_files(locate(ckpt["root"]), device="cpu",
                                        model_configs=json.loads(Path(ckpt["model_configs"]).read_text()))
    names = {id(getattr(pipe.nets, n)): n for n in ("dit", "t5", "clip", "vae", "wav2vec")}
    on_device: set[str] = set()
    moves: list[str] = []
    use, done = pipe._use, pipe._done

    def _use(net):
        use(net)
        if pipe.offload:
            on_device.add(names[id(net)])
            moves.append("+" + names[id(net)])

    def _done(net):
        done(net)
        if pipe.offload:
            on_device.discard(names[id(net)])
            moves.append("-" + names[id(net)])

    pipe._use, pipe._done = _use, _done
    seen_during_dit: list[set[str]] = []
    dit_forward = pipe.nets.dit.forward

    def spy(*a, **k):
        seen_during_dit.append(set(on_device))
        return dit_forward(*a, **k)

    pipe.nets.dit.forward = spy
    rgb = np.asarray(Image.open(test_data / "anytalker_examples" / "images" / "2p-0.png").convert("RGB"))
    rng = np.random.default_rng(0)
    waves = [rng.standard_normal(16000).astype(np.float32) * 0.1 for _ in range(2)]
    boxes = np.array([[138, 121, 301, 324], [618, 99, 787, 305]], np.float32)
    kw = dict(num_frames=9, size=SIZE, steps=1, seed=3)
    pipe.offload = False
    plain = pipe.generate(rgb, waves, boxes, **kw)
    pipe.offload = True
    off = pipe.generate(rgb, waves, boxes, **kw)
    assert plain.frames.shape == (9, 64, 96, 3) and np.array_equal(plain.frames, off.frames)
    assert seen_during_dit[-1] == {"dit"}  # only the DiT is on the device while it samples
    assert moves == ["+t5", "-t5", "+clip", "-clip", "+vae", "-vae", "+wav2vec", "-wav2vec", "+dit", "-dit",
                     "+vae", "-vae"]
    assert off.info["offload"] is True and off.info["frames"] == 9 and off.info["latent_frames"] == 3
