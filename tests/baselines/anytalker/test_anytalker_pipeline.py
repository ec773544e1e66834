"""AnyTalker pipeline rules and pieces (fast): output size and frame count against the spec's worked
examples, the official negative prompt, the file layout and its missing-file list (exit 3 before
any clip), the guidance loop against analytic cases, and the method's parameters."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from interactive_eyes.baselines.anytalker import shapes

# spec §9.1 "Examples (verified by executing the official lines)", area budget of "832*480"
SIZE_EXAMPLES = [
    ((480, 832), (448, 832)), ((720, 1280), (448, 832)), ((1080, 1920), (448, 832)), ((768, 1344), (448, 832)),
    ((480, 852), (448, 832)), ((832, 480), (832, 480)), ((1280, 720), (832, 448)), ((1024, 1024), (608, 608)),
    ((512, 512), (608, 608)), ((768, 1024), (544, 704)), ((1024, 1536), (512, 768)),
]


@pytest.mark.parametrize("image_hw, expected", SIZE_EXAMPLES)
def test_output_size_worked_examples(image_hw, expected):
    assert shapes.output_size(*image_hw, shapes.parse_size("832*480")) == expected


def test_output_size_float_quirk_is_the_cause_of_448():
    # the quirk of §9.1: r = 480/832 is rounded first, and sqrt(399360 * r) = 479.99999999999994 is just
    # below 480, so the latent height floors to 58 (464 px) and the 32-snapping then gives 448
    r = 480 / 832
    assert math.sqrt(399360 * r) == 479.99999999999994
    assert shapes.output_size(480, 832, 399360)[0] == 448
    # with an exact square root the same rule keeps 480: 832 x 480 in portrait gives 832x480
    assert shapes.output_size(832, 480, 399360) == (832, 480)


def test_sizes_are_multiples_of_32_and_within_the_budget():
    rng = np.random.default_rng(0)
    for _ in range(200):
        h, w = (int(v) for v in rng.integers(200, 3000, 2))
        oh, ow = shapes.output_size(h, w, 399360)
        assert oh % 32 == 0 and ow % 32 == 0 and oh * ow <= 399360


@pytest.mark.parametrize("duration, frames", [(3.4, 81), (5.0, 117), (8.597333333333333, 205), (2.0, 45),
                                              (1 / 24, 1), (5 / 24, 5)])
def test_frame_count_worked_examples(duration, frames):
    # §9.2: 3.4 s -> ceil 82 -> 81; 5 s -> 120 -> 117; interact_11's 8.597 s -> 207 -> 205
    assert shapes.frame_count(duration) == frames
    assert (frames - 1) % 4 == 0 and frames <= math.ceil(duration * 24)


def test_interact_11_audio_gives_205_frames(ie_root):
    from interactive_eyes.media.audio import audio_info

    d = max(audio_info(ie_root / "audio_left" / "interact_11_left.flac").duration,
            audio_info(ie_root / "audio_right" / "interact_11_right.flac").duration)
    assert d == pytest.approx(8.597, abs=1e-3) and shapes.frame_count(d) == 205


def test_parse_size_errors():
    assert shapes.parse_size("832*480") == 399360 and shapes.parse_size("512x512") == 262144
    with pytest.raises(ValueError, match="W\\*H"):
        shapes.parse_size("big")


def test_negative_prompt_is_the_official_string():
    from interactive_eyes.baselines.anytalker.pipeline import NEGATIVE_PROMPT, NEGATIVE_PROMPT_SHA256

    assert len(NEGATIVE_PROMPT) == 956  # §10.4
    assert hashlib.sha256(NEGATIVE_PROMPT.encode("utf-8")).hexdigest() == NEGATIVE_PROMPT_SHA256
    assert NEGATIVE_PROMPT_SHA256 == "3c1b589315ce40a31ee4d46bd1877730b9255a0bd02dc81512474d6289ad6cb2"


def test_to_uint8_truncates_after_clamping():
    from interactive_eyes.baselines.anytalker.pipeline import image_tensor, to_uint8

    v = torch.tensor([-2.0, -1.0, 0.0, 0.999, 1.0, 3.0]).view(1, 6, 1, 1).expand(3, 6, 1, 1)
    # (x + 1) / 2 * 255 truncated: 0, 0, 127 (127.5), 254 (254.87), 255, 255
    assert to_uint8(v)[:, 0, 0, 0].tolist() == [0, 0, 127, 254, 255, 255]
    rgb = np.array([[[0, 255, 51]]], dtype=np.uint8)
    assert image_tensor(rgb)[:, 0, 0].tolist() == pytest.approx([-1.0, 1.0, 51 / 255 * 2 - 1])


# ----------------------------------------------------------------------------------- files


@pytest.fixture
def home(tmp_path, monkeypatch):
    import interactive_eyes.weights as W

    monkeypatch.setenv("IE_BENCH_HOME", str(tmp_path / "home"))
    for spec in W.WEIGHTS.values():
        monkeypatch.delenv(spec.env_var, raising=False)
    return tmp_path


def _touch_all(root, skip=()):
    import interactive_eyes.weights as W
    from interactive_eyes.baselines.anytalker import files

    for name in W.WEIGHT_SETS[files.WEIGHT_SET]:
        if name in skip:
            continue
        p = files._expected(name, root)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(name.encode())


def test_missing_files_are_listed_with_their_expected_paths(home):
    from interactive_eyes.baselines.anytalker import files

    root = home / "ckpt"
    with pytest.raises(files.MissingFilesError) as err:
        files.locate(root)
    msg = str(err.value)
    assert "\n" not in msg and "10 file(s) missing" in msg  # 12 files, the config JSON and special-tokens map optional
    for rel in ("AnyTalker/1_3B-single-v1.pth", "Wan2.1-Fun-1.3B-Inp/Wan2.1_VAE.pth",
                "Wan2.1-Fun-1.3B-Inp/models_t5_umt5-xxl-enc-bf16.pth",
                "Wan2.1-Fun-1.3B-Inp/models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth",
                "Wan2.1-Fun-1.3B-Inp/google/umt5-xxl/tokenizer_config.json", "wav2vec2-base-960h/pytorch_model.bin"):
        assert str(root / rel) in msg
    _touch_all(root, skip={"anytalker_1_3b_dit"})
    with pytest.raises(files.MissingFilesError, match=r"1 file\(s\) missing.*1_3B-single-v1.pth"):
        files.locate(root)


def test_locate_in_the_cache_with_alternatives_and_env_override(home, monkeypatch, tmp_path):
    from interactive_eyes.baselines.anytalker import files

    cache = files.default_root()
    assert cache == home / "home" / "weights" / "anytalker-1.3b"
    _touch_all(cache, skip={"wav2vec2_base_960h_weights", "umt5_xxl_spiece", "anytalker_1_3b_config"})
    (cache / "wav2vec2-base-960h" / "model.safetensors").write_bytes(b"w")  # the other serialisation
    found = files.locate(None)
    assert found.wav2vec_dir == cache / "wav2vec2-base-960h" and found.dit_config is None
    assert found.tokenizer_dir == cache / "Wan2.1-Fun-1.3B-Inp" / "google" / "umt5-xxl"
    elsewhere = tmp_path / "my_dit.pth"
    elsewhere.write_bytes(b"d")
    monkeypatch.setenv("IE_BENCH_WEIGHT_ANYTALKER_1_3B_DIT", str(elsewhere))
    found = files.locate(None)
    assert found.dit == elsewhere
    assert found.describe()["anytalker_1_3b_dit"]["sha256"] == hashlib.sha256(b"d").hexdigest()


def test_run_without_weights_exits_3_before_any_clip(home, test_data):
    from interactive_eyes.app.cli import main

    out = home / "out"
    res = CliRunner().invoke(main, ["run", "--method", "anytalker", "--out", str(out), "--clips", "interact_11",
                                    "--root", str(test_data / "interactive_eyes"), "--quiet",
                                    "--param", f"ckpt_dir={home / 'nothing'}"])
    assert res.exit_code == 3, res.output
    assert "file(s) missing" in res.output and "1_3B-single-v1.pth" in res.output
    assert not (out / "run.json").exists()  # no clip was attempted


def test_weight_set_is_fetched_by_name(home, monkeypatch):
    import io

    import interactive_eyes.weights as W
    from interactive_eyes.app.cli import main

    def payload(url: str) -> bytes:  # well-formed for the structure checks of the registry
        if url.endswith(".json"):
            return json.dumps({"url": url}).encode()
        if url.endswith((".pth", ".bin")):
            return b"\x80\x02" + url.encode()  # a legacy torch pickle header
        if url.endswith(".onnx"):  # ModelProto fields ir_version (1, varint 7) and graph (7, the URL's bytes)
            return b"\x08\x07\x3a" + bytes([len(url)]) + url.encode()
        return url.encode()

    class Fake:
        def open(self, url, start=0):
            data = payload(url)[start:]
            return io.BytesIO(data), len(data)

    monkeypatch.setattr("interactive_eyes.download.default_transport", lambda: Fake())
    res = CliRunner().invoke(main, ["weights", "fetch", "anytalker-1.3b", "--quiet"])
    assert res.exit_code == 0, res.output
    from interactive_eyes.baselines.anytalker import files

    got = files.locate(None)  # every file of the set is now in the cache layout
    assert got.dit.read_bytes() == b"\x80\x02https://huggingface.co/zzz66/AnyTalker-1.3B/resolve/main/1_3B-single-v1.pth"
    assert got.t5.read_bytes().endswith(b"alibaba-pai/Wan2.1-Fun-V1.1-1.3B-InP/resolve/main/"
                                        b"models_t5_umt5-xxl-enc-bf16.pth")
    assert set(W.WEIGHT_SETS["anytalker-1.3b"]).isdisjoint(W.default_names())  # not in a plain fetch
    # the vocal separator is in the set, in the official checkpoints/vocal_separator/ folder
    assert (files.default_root() / "vocal_separator" / "Kim_Vocal_2.onnx").read_bytes().endswith(b"Kim_Vocal_2.onnx")


# ----------------------------------------------------------------------------------- sampling


def _tiny_dit(seed=0):
    from interactive_eyes.baselines.anytalker import AnyTalkerConfig, AnyTalkerDiT

    torch.manual_seed(seed)
    cfg = AnyTalkerConfig(dim=32, ffn_dim=64, num_heads=2, num_layers=1, text_dim=8, text_len=16, clip_dim=8,
                          audio_blocks=2, audio_channels=4, audio_intermediate_dim=8, audio_context_tokens=2)
    return AnyTalkerDiT(cfg).eval()


def _cond(n_id=2, frames=9, hw=(4, 6), seed=1):
    from interactive_eyes.baselines.anytalker.sampling import Conditioning

    g = torch.Generator().manual_seed(seed)
    f = (frames - 1) // 4 + 1

    def r(*s):
        return torch.randn(*s, generator=g)

    return Conditioning(r(5, 8), r(7, 8), r(1, 5, 8), r(20, f, *hw), [r(frames, 5, 2, 4) for _ in range(n_id)],
                        [r(1, 3, 8) for _ in range(n_id)],
                        [torch.rand(1, 1, f, hw[0] // 2, hw[1] // 2, generator=g) for _ in range(n_id)])


def test_batched_cfg_equals_two_passes_and_the_guidance_formula():
    from interactive_eyes.baselines.anytalker.sampling import guided_velocity

    dit, cond = _tiny_dit(), _cond()
    x = torch.randn(16, 3, 4, 6, generator=torch.Generator().manual_seed(2))
    t = torch.tensor(937)
    with torch.no_grad():
        a = guided_velocity(dit, x, t, cond, 4.5, batch_cfg=True)
        b = guided_velocity(dit, x, t, cond, 4.5, batch_cfg=False)
        v_c = dit([x], t.reshape(1), [cond.context], cond.clip_fea, [cond.y], audio=list(cond.audio),
                  ref_faces=cond.ref_faces, face_masks=cond.face_masks)[0]
        v_u = dit([x], t.reshape(1), [cond.context_null], cond.clip_fea, [cond.y],
                  audio=[torch.zeros_like(z) for z in cond.audio], ref_faces=cond.ref_faces,
                  face_masks=cond.face_masks)[0]
        g1 = guided_velocity(dit, x, t, cond, 1.0, batch_cfg=True)
    assert torch.allclose(a, b, atol=1e-5)
    assert torch.allclose(b, v_u + 4.5 * (v_c - v_u), atol=1e-6)
    assert torch.allclose(g1, v_c, atol=1e-5)  # g = 1: the conditional prediction alone
    assert (v_c - v_u).abs().max() > 1e-3  # text and audio do change the prediction


def test_one_step_sampling_returns_the_x0_prediction():
    from interactive_eyes.baselines.anytalker.sampling import guided_velocity, initial_noise, sample
    from interactive_eyes.baselines.anytalker.scheduler import official_flow_schedule

    dit, cond = _tiny_dit(), _cond()
    noise = initial_noise((16, 3, 4, 6), seed=5)
    sigmas, timesteps = official_flow_schedule(1, 3.0)
    with torch.no_grad():
        out = sample(dit, noise, cond, steps=1, shift=3.0, guidance=4.5)
        v = guided_velocity(dit, noise, timesteps[0], cond, 4.5)
    # one step to sigma 0: x0 = x_t - sigma_t * v (flow matching, §10.1)
    assert torch.allclose(out, noise - sigmas[0] * v, atol=1e-5)
    assert torch.equal(initial_noise((16, 3, 4, 6), seed=5), noise)
    assert not torch.equal(initial_noise((16, 3, 4, 6), seed=6), noise)


def test_sampling_is_deterministic_and_reports_each_step():
    from interactive_eyes.baselines.anytalker.sampling import initial_noise, sample

    dit, cond = _tiny_dit(), _cond(n_id=3)
    steps = []
    with torch.no_grad():
        a = sample(dit, initial_noise((16, 3, 4, 6), 3), cond, steps=3, shift=5.0,
                   on_step=lambda i, t, s: steps.append((i, t)))
        b = sample(dit, initial_noise((16, 3, 4, 6), 3), cond, steps=3, shift=5.0)
    assert torch.equal(a, b) and [s[0] for s in steps] == [0, 1, 2] and steps[0][1] == 999


# ----------------------------------------------------------------------------------- method


def test_method_parameters():
    from interactive_eyes.baselines import METHODS

    cls = METHODS.get("anytalker")
    assert cls.capabilities.native_fps == 24 and cls.capabilities.max_people is None
    assert cls.DEFAULT_PARAMS["guidance"] == 4.5 and cls.DEFAULT_PARAMS["steps"] == 20
    with pytest.raises(ValueError, match="vocal_separation must be true or false"):
        cls(vocal_separation="yes")
    with pytest.raises(ValueError, match="unknown parameter"):
        cls(sample_fps=16)
    with pytest.raises(ValueError, match="face_detector"):
        cls(face_detector="dlib")
    with pytest.raises(ValueError, match="dtype"):
        cls(dtype="int8")
    m = cls(steps=2, seed=3)
    assert json.loads(json.dumps(m.params()))["steps"] == 2
    # the longest clip the RoPE tables allow: F <= 4093 frames
    from interactive_eyes.baselines.anytalker.pipeline import MAX_FRAMES

    assert shapes.frame_count(cls.capabilities.max_duration) == MAX_FRAMES == 4093
    assert shapes.frame_count(cls.capabilities.max_duration + 1 / 24) > MAX_FRAMES


# ----------------------------------------------------------------------------------- faces


def test_tracker_boxes_bind_left_to_right_on_the_real_reference(test_data):
    from PIL import Image

    from interactive_eyes.baselines.anytalker.faces import FaceBindingError, detect_faces

    rgb = np.asarray(Image.open(test_data / "anytalker_examples" / "images" / "2p-0.png").convert("RGB"))
    boxes = detect_faces(rgb, 2)
    assert boxes.shape == (2, 4) and boxes[0, 0] < boxes[1, 0]
    # one face per half of the 852-px frame, each a plausible face size (~160-200 px)
    assert boxes[0, 2] < 426 < boxes[1, 0]
    assert np.all((boxes[:, 2] - boxes[:, 0] > 100) & (boxes[:, 2] - boxes[:, 0] < 300))
    with pytest.raises(FaceBindingError, match="for 3 audio track"):
        detect_faces(rgb, 3)


def test_insightface_option_keeps_the_largest_faces_left_to_right(monkeypatch):
    """The official selection on SCRFD boxes (stand-in package: insightface is optional here)."""
    import sys
    import types

    from interactive_eyes.baselines.anytalker.faces import FaceBindingError, detect_faces

    seen = {}

    class Face:
        def __init__(self, box):
            self.bbox = np.array(box, dtype=np.float32)

    class FaceAnalysis:
        def __init__(self, allowed_modules, providers):
            seen["modules"] = allowed_modules

        def prepare(self, ctx_id, det_thresh, det_size):
            seen["thresh"], seen["size"] = det_thresh, det_size

        def get(self, bgr):
            seen["pixel"] = bgr[0, 0].tolist()
            # right big, left big, a small one in the middle (dropped: not among the 2 largest)
            return [Face([300, 10, 400, 120]), Face([150, 50, 170, 70]), Face([20, 20, 110, 130])]

    pkg = types.ModuleType("insightface")
    app = types.ModuleType("insightface.app")
    app.FaceAnalysis = FaceAnalysis
    monkeypatch.setitem(sys.modules, "insightface", pkg)
    monkeypatch.setitem(sys.modules, "insightface.app", app)
    rgb = np.zeros((200, 420, 3), np.uint8)
    rgb[0, 0] = (1, 2, 3)
    boxes = detect_faces(rgb, 2, "insightface")
    assert boxes.tolist() == [[20, 20, 110, 130], [300, 10, 400, 120]]
    assert seen == {"modules": ["detection"], "thresh": 0.15, "size": (640, 640), "pixel": [3, 2, 1]}
    with pytest.raises(FaceBindingError, match="3 face"):
        detect_faces(rgb, 4, "insightface")
