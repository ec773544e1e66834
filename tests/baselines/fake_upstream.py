"""Stand-ins for the foreign methods' entry points (run as subprocesses by the adapter tests).

Each ``fake_<method>`` parses the argv the real script's parser would, **asserts** the documented
contract (flags, environment, input files: spec/baselines.md §2-4), then writes a video with
the method's quirks: its native fps, lead-in frames, size policy (resize / cover crop / box
crop), frame-count rule, output naming and its own (wrong) audio or none.

Video content, so the normalised output can be checked: content frame j (audio time j / fps) is
the received image mapped by the method's policy; for j >= 1 an 8-bit binary code of j is drawn
in ``CODE_ROWS`` bottom rows (8 blocks, white = 1). Lead-in frames are flat grey with code 255.
Frame 0 has no code so that it can be registered against the reference.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

CODE_BITS = 8
LEAD_CODE = 255
OWN_TONE_HZ = 1000.0  # every fake muxes a 1 kHz tone: the normalised output must not carry it


def code_rows(h: int) -> int:
    return max(4, h // 8)


def draw_code(frame: np.ndarray, value: int) -> np.ndarray:
    f = frame.copy()
    h, w = f.shape[:2]
    r, bw = code_rows(h), w // CODE_BITS
    for b in range(CODE_BITS):
        f[h - r:, b * bw:(b + 1) * bw] = 255 if (value >> (CODE_BITS - 1 - b)) & 1 else 0
    return f


def read_code(frame: np.ndarray) -> int:
    h, w = frame.shape[:2]
    r, bw = code_rows(h), w // CODE_BITS
    v = 0
    for b in range(CODE_BITS):
        v = (v << 1) | int(frame[h - r + 1: h - 1, b * bw + 1:(b + 1) * bw - 1].mean() > 128)
    return v


def load_rgb(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def resize(rgb, size):
    return np.asarray(Image.fromarray(rgb).resize(size, Image.BICUBIC))


def cover_crop(rgb, size):
    """Resize to cover ``size`` then centre-crop (what the bucketed methods do)."""
    h, w = rgb.shape[:2]
    W, H = size
    s = max(W / w, H / h)
    big = resize(rgb, (max(W, round(w * s)), max(H, round(h * s))))
    y, x = (big.shape[0] - H) // 2, (big.shape[1] - W) // 2
    return big[y:y + H, x:x + W]


def wav(path):
    """(samples float32, rate) of a 16-bit PCM WAV, with its format asserted."""
    import wave

    with wave.open(str(path)) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2, f"{path}: not 16-bit mono"
        x = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768
        return x, w.getframerate()


def emit(path, first: np.ndarray, fps: float, n_content: int, *, lead_in: int = 0, audio: bool = True) -> None:
    from interactive_eyes.media.video import write_video

    h, w = first.shape[:2]
    grey = draw_code(np.full_like(first, 128), LEAD_CODE)
    frames = [grey] * lead_in + [first] + [draw_code(first, j) for j in range(1, n_content)]
    a = None
    if audio:
        n = int(len(frames) / fps * 16000)
        a = (0.3 * np.sin(2 * np.pi * OWN_TONE_HZ * np.arange(n) / 16000)).astype(np.float32)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_video(path, frames, fps, audio=a, audio_rate=16000)


def common_checks(cwd_name: str = "work") -> None:
    """What every job gets from the shared runner."""
    assert os.environ.get("HF_HUB_OFFLINE") == "1" and os.environ.get("TRANSFORMERS_OFFLINE") == "1", "hub not offline"
    assert os.environ.get("TOKENIZERS_PARALLELISM") == "false" and os.environ.get("PYTHONUNBUFFERED") == "1"
    assert Path(os.environ["TMPDIR"]).name == "tmp" and Path(os.environ["TMPDIR"]).is_dir(), "TMPDIR not per job"
    assert Path.cwd().name == cwd_name, f"cwd {Path.cwd()} is not the job's working directory"
    assert sys.stdin.read() == "", "stdin is not closed"
    assert "PYTHONPATH" not in os.environ, "harness PYTHONPATH leaked into the method's environment"


def parse(argv, spec: dict, positional=()):
    ap = argparse.ArgumentParser()
    for p in positional:
        ap.add_argument(p)
    for flag, kw in spec.items():
        ap.add_argument(flag, **kw)
    return ap.parse_args(argv)


S = {"required": True}
N = {"nargs": "+", "required": True}


def fake_meigen(argv, which):
    a = parse(argv, {"--task": S, "--size": S, "--mode": S, "--ckpt_dir": S, "--wav2vec_dir": S, "--input_json": S,
                     "--save_file": S, "--audio_save_dir": S, "--base_seed": S, "--sample_steps": S, "--sample_shift": S,
                     "--sample_text_guide_scale": S, "--sample_audio_guide_scale": S,
                     "--num_persistent_param_in_dit": S, "--frame_num": {}, "--motion_frame": S,
                     "--max_frame_num": {}, "--infinitetalk_dir": {}})
    assert a.mode == "streaming", "clip mode stops at 81 frames"
    assert a.task == f"{which}-14B" and a.size == f"{which}-480"
    js = json.loads(Path(a.input_json).read_text())
    image_key = "cond_image" if which == "multitalk" else "cond_video"
    assert set(js) >= {"prompt", image_key, "cond_audio"}, js.keys()
    img = load_rgb(js[image_key])
    auds = js["cond_audio"]
    assert list(auds) == [f"person{i + 1}" for i in range(len(auds))]
    lens = {wav(p)[0].size for p in auds.values()}
    assert len(lens) == 1, "para tracks must have the same length"
    d = lens.pop() / 16000
    assert d * 25 > 81, "audio must be longer than 81 frames"
    if len(auds) == 2:
        assert js["audio_type"] == "para"
        boxes = [js["bbox"][k] for k in auds]
        h, w = img.shape[:2]
        for top, left, bottom, right in boxes:  # [top, left, bottom, right] in source pixels
            assert 0 <= top < bottom <= h and 0 <= left < right <= w, boxes
        assert boxes[0][1] < boxes[1][1], "person1 must be the left one"
        Path(os.environ["FAKE_RECORD"]).write_text(json.dumps({"bbox": boxes, "size": [w, h]}))
    if which == "multitalk":
        ck = Path(a.ckpt_dir)
        assert (ck / "multitalk.safetensors").is_symlink(), "multitalk weights not linked into the ckpt folder"
        assert os.readlink(ck / "diffusion_pytorch_model.safetensors.index.json").endswith(
            "MeiGen-MultiTalk/diffusion_pytorch_model.safetensors.index.json")
        assert a.motion_frame == "25" and a.frame_num == "81"
        n = math.floor(25 * d) - 3  # streaming: about floor(25 d) - 3
    else:
        assert a.infinitetalk_dir.endswith(("multi/infinitetalk.safetensors" if len(auds) == 2 else
                                            "single/infinitetalk.safetensors"))
        assert a.motion_frame == "9" and a.max_frame_num == "1000"
        n = math.floor(25 * d)
    emit(a.save_file + ".mp4", cover_crop(img, (96, 48)), 25, n)  # 2:1 bucket, centre crop


def fake_multitalk(argv):
    fake_meigen(argv, "multitalk")


def fake_infinitetalk(argv):
    fake_meigen(argv, "infinitetalk")


def fake_longcat(argv):
    assert os.environ.get("LOCAL_RANK") == "0" and os.environ.get("WORLD_SIZE") == "1", "not launched by torchrun"
    a = parse(argv, {"--input_json": S, "--output_dir": S, "--resolution": S, "--num_segments": S, "--context_parallel_size": S,
                     "--checkpoint_dir": S, "--model_type": S, "--num_inference_steps": S, "--text_guidance_scale": S,
                     "--audio_guidance_scale": S, "--use_distill": {"action": "store_true"}})
    assert a.model_type == "avatar-v1.5" and a.use_distill, "v1.5 needs --use_distill"
    js = json.loads(Path(a.input_json).read_text())
    assert js["audio_type"] == "para" and list(js["cond_audio"]) == ["person1", "person2"]
    boxes = js["bbox"]
    assert boxes["person1"][1] < boxes["person2"][1] and len(boxes.get("others", [])) % 4 == 0
    Path(os.environ["FAKE_RECORD"]).write_text(json.dumps({"bbox": boxes}))
    img = load_rgb(js["cond_image"])
    seg = int(a.num_segments)
    first = cover_crop(img, (96, 56))
    out = Path(a.output_dir)
    emit(out / "ai2v_demo_1.mp4", first, 25, 93)
    for k in range(1, seg):  # each continuation holds all frames so far
        emit(out / f"video_continue_{k}.mp4", first, 25, 93 + 80 * k)


def fake_bya_features(argv):
    a = parse(argv, {"--wav2vec": S, "--fps": S, "--pair": {"nargs": 2, "action": "append", "required": True}})
    assert a.fps == "25" and len(a.pair) == 2
    for w, out in a.pair:
        x, rate = wav(w)
        assert rate == 16000 and np.abs(x[:1280]).max() == 0, "0.08 s of silence must lead each track"
        Path(out).write_text(json.dumps({"frames": round(x.size / 16000 * 25), "layers": 12, "dim": 768}))


def fake_bya(argv):
    a = parse(argv, {"--img_file_path": N, "--img_bg_file_path": S, "--prompt": S, "--audio_emb_path": N,
                     "--speaker_pos": S, "--num_frames": S, "--seed": S, "--guidance_scale": S,
                     "--num_inference_steps": S, "--dtype": S, "--model_path": S, "--output_path": S, "--log_file_path": S})
    assert len(a.img_file_path) == 2 and len(a.audio_emb_path) == 2 and a.speaker_pos == "left" and a.num_frames == "49"
    faces = [load_rgb(p) for p in a.img_file_path]
    assert all(abs(f.shape[0] - f.shape[1]) <= 1 for f in faces), "face crops are squares"
    emb = [json.loads(Path(p).read_text()) for p in a.audio_emb_path]
    assert all(e["frames"] >= 53 for e in emb), "49 frames need 53 embedding frames"
    out = Path(a.output_path)
    assert not any(out.iterdir()), "the output folder must be empty (file names count its files)"
    Path("logs").mkdir(exist_ok=True)
    (Path("logs") / "infer_result.log").write_text("ok")
    emit(out / f"{a.seed}_{len(list(out.iterdir())):04d}.mp4", resize(load_rgb(a.img_bg_file_path), (72, 48)), 25, 49)


def fake_anytalker(argv):
    a = parse(argv, {"--task": S, "--size": S, "--ckpt_dir": S, "--post_trained_checkpoint_path": S, "--dit_config": S,
                     "--batch_gen_json": S, "--batch_output": S, "--sample_fps": S, "--mode": S, "--sample_steps": S,
                     "--sample_guide_scale": S, "--sample_shift": S, "--det_thresh": S, "--base_seed": S, "--use_half": S})
    assert a.sample_fps == "24", "--sample_fps 24 (else 16 fps output)"
    assert a.mode == "pad"
    assert Path("checkpoints/vocal_separator/Kim_Vocal_2.onnx").exists(), "relative checkpoints/ not reachable from cwd"
    (key, it), = json.loads(Path(a.batch_gen_json).read_text()).items()
    assert it["caption"] == it["enhance_caption"], "unequal captions generate the item twice"
    lens = [wav(p)[0].size for p in it["audio_list"]]
    assert len(set(lens)) == 1 and all(os.path.isabs(p) for p in it["audio_list"] + [it["image_path"]])
    d = lens[0] / 16000
    n = math.ceil(d * 24)
    n = (n - 1) // 4 * 4 + 1  # largest 4n+1 <= ceil(24 d)
    stems = "_".join(f"audio{i}_{Path(p).name.split('.')[0]}" for i, p in enumerate(it["audio_list"]))
    emit(Path(a.batch_output) / f"{key}_{stems}_cfg_{a.sample_guide_scale}.mp4",
         resize(load_rgb(it["image_path"]), (96, 64)), 24, n)


def fake_hallo3(argv):
    a = parse(argv, {"--base": N, "--seed": S, "--input-file": S, "--output-dir": S})
    assert a.base == ["./configs/cogvideox_5b_i2v_s2.yaml", "./configs/inference.yaml"]
    assert (os.environ.get("WORLD_SIZE"), os.environ.get("RANK"), os.environ.get("LOCAL_RANK")) == ("1", "0", "0")
    (line,) = Path(a.input_file).read_text().splitlines()
    prompt, image, audio = line.split("@@")
    img = load_rgb(image)
    assert abs(img.shape[1] / img.shape[0] - 1.5) < 0.02, "hallo3 needs 1:1 or 3:2 images"
    x, _ = wav(audio)
    out = Path(a.output_dir) / f"{Path(image).stem}-{Path(audio).stem}-seed_{a.seed}" / "000000_with_audio.mp4"
    emit(out, resize(img, (72, 48)), 25, round(x.size / 16000 * 25))


def fake_sonic(argv):
    a = parse(argv, {"--dynamic_scale": S}, positional=("image", "audio", "out"))
    img = load_rgb(a.image)
    x, _ = wav(a.audio)
    emit(a.out, resize(img, (96, 64)), 25, round(x.size / 16000 * 25))


def fake_fantasytalking(argv):
    a = parse(argv, {k: S for k in ("--image_path", "--audio_path", "--prompt", "--output_dir", "--image_size",
                                    "--max_num_frames", "--fps", "--audio_scale", "--prompt_cfg_scale", "--audio_cfg_scale",
                                    "--seed", "--num_persistent_param_in_dit", "--wan_model_dir",
                                    "--fantasytalking_model_path", "--wav2vec_model_dir")})
    assert a.fps == "23"
    x, _ = wav(a.audio_path)
    need = round(x.size / 16000 * 23)
    assert int(a.max_num_frames) >= need and (int(a.max_num_frames) - 5) % 4 == 0, "max_num_frames must cover the clip"
    n = min(int(a.max_num_frames), (need - 5) // 4 * 4 + 5)
    emit(Path(a.output_dir) / f"{Path(a.image_path).stem}_{Path(a.audio_path).stem}_20260101_120000.mp4",
         resize(load_rgb(a.image_path), (96, 64)), 23, n)


def fake_stableavatar(argv):
    keys = ("--config_path", "--pretrained_model_name_or_path", "--transformer_path", "--pretrained_wav2vec_path",
            "--validation_reference_path", "--validation_driven_audio_path", "--validation_prompts", "--output_dir",
            "--width", "--height", "--sample_steps", "--overlap_window_length", "--clip_sample_n_frames", "--motion_frame",
            "--GPU_memory_mode", "--sample_text_guide_scale", "--sample_audio_guide_scale", "--seed")
    a = parse(argv, {k: S for k in keys})
    w, h = int(a.width), int(a.height)
    assert (w, h) in ((512, 512), (480, 832), (832, 480))
    assert a.transformer_path.endswith("transformer3d-square.pt" if w == h else "transformer3d-rec-vec.pt")
    img = load_rgb(a.validation_reference_path)
    assert abs(img.shape[1] / img.shape[0] - w / h) < 0.02, "the image must be pre-cropped to the output aspect"
    x, _ = wav(a.validation_driven_audio_path)
    emit(Path(a.output_dir) / "video_without_audio.mp4", resize(img, (104, 60)), 25, round(x.size / 16000 * 25), audio=False)


def fake_echomimic_v1(argv):
    a = parse(argv, {"--config": S, "-W": S, "-H": S, "-L": S, "--seed": S, "--cfg": S, "--steps": S, "--fps": S,
                     "--context_frames": S, "--context_overlap": S, "--facemusk_dilation_ratio": S,
                     "--facecrop_dilation_ratio": S})
    assert a.fps == "24" and a.W == "512" and a.H == "512"
    cfg = json.loads(Path(a.config).read_text())  # YAML written as JSON
    (image, audios), = cfg["test_cases"].items()
    img = load_rgb(image)
    x, _ = wav(audios[0])
    face = json.loads(os.environ["FAKE_FACE"])  # where the fake's "detector" finds the face
    r = float(a.facecrop_dilation_ratio)
    side = max(face[2] - face[0], face[3] - face[1]) * (1 + 2 * r)
    cx, cy = (face[0] + face[2]) / 2, (face[1] + face[3]) / 2
    x1, y1 = int(round(cx - side / 2)), int(round(cy - side / 2))
    crop = img[y1:y1 + int(round(side)), x1:x1 + int(round(side))]
    emit(Path("output/20260101/1200--seed_420") / f"{Path(image).stem}_withaudio.mp4", resize(crop, (64, 64)), 24,
         min(1200, round(x.size / 16000 * 24)))


def fake_echomimic_v3(argv):
    keys = ("--image_path", "--audio_path", "--prompt", "--save_path", "--model_name", "--transformer_path",
            "--wav2vec_model_dir", "--config_path", "--num_inference_steps", "--video_length", "--fps", "--guidance_scale",
            "--audio_guidance_scale", "--seed")
    a = parse(argv, {**{k: S for k in keys}, "--sample_size": {"nargs": 2, "required": True}})
    assert a.fps == "25" and a.num_inference_steps == "8"
    x, _ = wav(a.audio_path)
    need = round(x.size / 16000 * 25)
    L = int(a.video_length)
    assert L >= need and (L - 1) % 4 == 0, "video_length must be 4n+1 covering the clip (default 81 cuts at 3.24 s)"
    emit(Path(a.save_path) / f"{Path(a.image_path).stem}_output.mp4", resize(load_rgb(a.image_path), (96, 64)), 25, need)


def fake_aniportrait(argv):
    a = parse(argv, {"--config": S, "-W": S, "-H": S, "--seed": S, "--cfg": S, "--steps": S, "--fps": S})
    assert a.fps == "30"
    cfg = json.loads(Path(a.config).read_text())
    (image, audios), = cfg["test_cases"].items()
    img = load_rgb(image)
    assert img.shape[0] == img.shape[1], "pre-cropped to square (the code stretches)"
    x, _ = wav(audios[0])
    assert x.size / 16000 >= 5.0, "audio-to-pose crashes under 5 s"
    emit(Path("output/20260101/1200--seed_42-512x512") / f"{Path(image).stem}_{Path(audios[0]).stem}_512x512_3.5_1200.mp4",
         resize(img, (64, 64)), 30, round(x.size / 16000 * 30))


def fake_omniavatar(argv):
    assert os.environ.get("LOCAL_RANK") == "0", "not launched by torchrun"
    a = parse(argv, {"--config": S, "--input_file": S, "--hp": S})
    hp = dict(kv.split("=") for kv in a.hp.split(","))
    assert float(hp["silence_duration_s"]) == 0.32, "silence must be a multiple of 1/25"
    (line,) = Path(a.input_file).read_text().splitlines()
    _, image, audio = line.split("@@")
    x, _ = wav(audio)
    img = cover_crop(load_rgb(image), (72, 40))
    # frame 0 = the reference, then 8 frames over the prepended silence, then the audio
    emit(Path("demo_out/exp/res_list_seed42_20260101") / "result_0_000_wav.mp4", img, 25, round(x.size / 16000 * 25),
         lead_in=9)


def fake_wan_s2v(argv):
    a = parse(argv, {"--task": S, "--size": S, "--ckpt_dir": S, "--offload_model": S, "--convert_model_dtype": {"action": "store_true"},
                     "--prompt": S, "--image": S, "--audio": S, "--infer_frames": S, "--save_file": S, "--base_seed": S,
                     "--sample_steps": S, "--sample_guide_scale": S})
    assert a.task == "s2v-14B" and a.convert_model_dtype
    x, _ = wav(a.audio)
    emit(a.save_file, resize(load_rgb(a.image), (96, 64)), 16, math.ceil(x.size / 16000 * 16))


def fake_hang(argv):
    """Starts a child that also sleeps (same process group), then hangs; records both pids."""
    import subprocess
    import time

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    Path(os.environ["FAKE_RECORD"]).write_text(json.dumps({"pid": os.getpid(), "child": child.pid}))
    time.sleep(600)


def fake_fail(argv):
    print("loading model ...", flush=True)
    for i in range(30):
        print(f"noise line {i}", file=sys.stderr)
    print("RuntimeError: CUDA out of memory (fake)", file=sys.stderr)
    sys.exit(7)


def fake_flaky(argv):
    """Fails on its first launch (a transient error), then behaves like Sonic."""
    rec = Path(os.environ["FAKE_RECORD"])
    n = int(rec.read_text()) + 1 if rec.exists() else 1
    rec.write_text(str(n))
    if n == 1:
        print("RuntimeError: NCCL timeout (fake, transient)", file=sys.stderr)
        sys.exit(1)
    fake_sonic(argv)


def fake_count(argv):
    """Counts its launches (resume test) and writes one small video."""
    rec = Path(os.environ["FAKE_RECORD"])
    rec.write_text(str(int(rec.read_text() or 0) + 1) if rec.exists() else "1")
    emit(argv[argv.index("--out") + 1], np.zeros((32, 64, 3), np.uint8), 25, 5)


def main(name: str) -> None:
    argv = sys.argv[1:]
    if name not in ("bya_features", "hang", "fail", "count", "flaky"):
        common_checks()
    globals()[f"fake_{name}"](argv)


def leftover_outputs(pattern: str) -> list[str]:
    return glob.glob(pattern, recursive=True)
