"""Identity similarity: real faces with the offline dlib backend, ArcFace plumbing with a tiny ONNX stand-in."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import warnings

import numpy as np
import pytest

from interactive_eyes import weights as W
from interactive_eyes.download import sha256_file
from interactive_eyes.metrics.base import ClipContext, FaceBox, FrameData
from interactive_eyes.metrics.identity import (
    ARCFACE_TEMPLATE,
    ArcFaceEmbedder,
    IdentitySimilarity,
    align_arcface,
    detect_faces_dlib,
    five_points,
    similarity_transform,
)

STRIDE = 10  # every 10th frame, as the values quoted in the issue were measured


# --------------------------------------------------------------------------- real faces (dlib)


@pytest.fixture(scope="module")
def interact_11_faces(interact_11):
    """Every 10th frame of clip 11 with its two faces found by dlib's detector, bound left to right."""
    pytest.importorskip("dlib")
    from interactive_eyes.media.video import iter_frames

    frames = []
    for fr in iter_frames(interact_11):
        if fr.index % STRIDE == 0:
            boxes = detect_faces_dlib(fr.rgb, upsample=0)  # faces are ~180 px: no upsampling needed
            faces = tuple(boxes) if len(boxes) == 2 else (None, None)
            frames.append(FrameData(index=fr.index, time=fr.time, rgb=fr.rgb, faces=faces))
    return frames


def _ctx(interact_11, **options):
    from interactive_eyes.data.manifest import load

    clip = next(c for c in load().clips if c.id == "interact_11")
    return ClipContext(clip=clip, video_path=interact_11, info=None, options=options)


def _run(metric, ctx, frames):
    state = metric.start(ctx)
    for f in frames:
        metric.update(state, f)
    return metric.finish(state)


def test_dlib_identity_on_interact_11_same_person_high_other_person_lower(interact_11, interact_11_faces):
    frames = interact_11_faces
    assert sum(f.faces[0] is not None for f in frames) >= 18  # both faces found in (nearly) every frame
    first = frames[0]
    metric = IdentitySimilarity(backend="dlib", frame_stride=STRIDE)
    # Reference image = the first frame with the two faces *swapped*: the "vs reference" value of
    # each person is then their similarity to the other person (cross-person similarity).
    swapped = _ctx(interact_11, reference_image=first.rgb, reference_faces=[first.faces[1], first.faces[0]])
    res = _run(metric, swapped, frames)
    print("identity interact_11 (dlib, every 10th frame):", res.per_person, "cross:", res.details["per_person_vs_reference"])

    assert res.status == "ok" and res.details["backend"] == "dlib"
    left, right = res.per_person["left"], res.per_person["right"]
    cross = res.details["per_person_vs_reference"]
    # values measured here: first-vs-rest 0.967 (left) and 0.977 (right); cross-person ≈0.84
    assert left == pytest.approx(0.967, abs=0.015) and right == pytest.approx(0.977, abs=0.015)
    assert max(cross.values()) < min(left, right) - 0.08
    assert 0.75 < min(cross.values())  # dlib's high cosine baseline between different people
    assert res.value == pytest.approx((left + right) / 2)
    assert res.details["n_scored"] == {"left": len(frames) - 1, "right": len(frames) - 1}


def test_reference_image_equal_to_first_frame_includes_self_similarity(interact_11, interact_11_faces):
    frames = interact_11_faces[:6]
    first = frames[0]
    metric = IdentitySimilarity(backend="dlib", frame_stride=STRIDE)
    res = _run(metric, _ctx(interact_11, reference_image=first.rgb, reference_faces=list(first.faces)), frames)
    for role in ("left", "right"):
        n = res.details["n_scored"][role]
        # vs reference averages over all frames incl. frame 0 (cos = 1); first-vs-rest over later frames
        expected = (1.0 + n * res.per_person[role]) / (n + 1)
        assert res.details["per_person_vs_reference"][role] == pytest.approx(expected, abs=1e-6)


def test_missing_faces_are_skipped_and_counted(interact_11, interact_11_faces):
    frames = list(interact_11_faces[:5])
    frames[2] = dataclasses.replace(frames[2], faces=(frames[2].faces[0], None))
    res = _run(IdentitySimilarity(backend="dlib", frame_stride=STRIDE), _ctx(interact_11), frames)
    assert res.details["n_missing"] == {"left": 0, "right": 1}
    assert res.details["n_scored"] == {"left": 4, "right": 3}


def test_no_face_at_all_fails_the_clip_instead_of_scoring_zero(interact_11, interact_11_faces):
    frames = [dataclasses.replace(f, faces=(None, None)) for f in interact_11_faces[:3]]
    res = _run(IdentitySimilarity(backend="dlib", frame_stride=STRIDE), _ctx(interact_11), frames)
    assert res.status == "failed" and res.value is None


def test_dlib_models_are_found_without_importing_face_recognition_models():
    code = ("import sys; from interactive_eyes.metrics.identity import dlib_model_dir; d = dlib_model_dir(); "
            "assert 'face_recognition_models' not in sys.modules; print(d)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("face_recognition_models/models")


# --------------------------------------------------------------------------- ArcFace plumbing

POOL = 8  # the stand-in averages 8×8 blocks: 3×14×14 = 588 inputs to a 588×512 projection


@pytest.fixture(scope="module")
def arcface_standin(tmp_path_factory):
    """A tiny ONNX model with ArcFace's signature: N×3×112×112 float → N×512."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = rng.normal(size=(3 * 14 * 14, 512)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("AveragePool", ["input.1"], ["p"], kernel_shape=[POOL, POOL], strides=[POOL, POOL]),
         helper.make_node("Flatten", ["p"], ["f"], axis=1),
         helper.make_node("MatMul", ["f", "W"], ["683"])],
        "arcface_standin",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["None", 3, 112, 112])],
        [helper.make_tensor_value_info("683", TensorProto.FLOAT, ["None", 512])],
        initializer=[numpy_helper.from_array(w, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path_factory.mktemp("arcface") / "w600k_r50.onnx"
    onnx.save(model, str(path))
    return path, w


def _expected_embedding(crop_rgb: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The stand-in's output computed in numpy from an aligned RGB crop (insightface's blob)."""
    x = ((crop_rgb.astype(np.float32) - 127.5) / 127.5).transpose(2, 0, 1)  # RGB, CHW
    pooled = x.reshape(3, 14, POOL, 14, POOL).mean(axis=(2, 4)).reshape(-1)
    e = pooled @ w
    return e / np.linalg.norm(e)


def _face_scene(seed: int, offset=(0, 0)):
    """A colourful textured 'face' patch pasted in a frame, with 68 landmarks placed so that its
    5 derived keypoints are the ArcFace template scaled ×1.5 at the patch position."""
    rng = np.random.default_rng(seed)
    frame = np.zeros((260, 300, 3), dtype=np.uint8)
    coarse = rng.integers(0, 256, size=(12, 12, 3))
    patch = np.kron(coarse, np.ones((14, 14, 1))).astype(np.uint8)  # 168×168, strong colour blocks
    oy, ox = 40 + offset[1], 60 + offset[0]
    frame[oy:oy + 168, ox:ox + 168] = patch
    kps = ARCFACE_TEMPLATE * 1.5 + [ox, oy]
    lm = np.zeros((68, 2))
    lm[36:42], lm[42:48], lm[30], lm[48], lm[54] = kps[0], kps[1], kps[2], kps[3], kps[4]
    return frame, lm, FaceBox(ox, oy, ox + 168, oy + 168)


def test_similarity_transform_matches_skimage():
    skt = pytest.importorskip("skimage.transform")
    rng = np.random.default_rng(1)
    src = ARCFACE_TEMPLATE * 2.3 + rng.normal(0, 2.0, (5, 2)) + [100, 40]
    ref = skt.SimilarityTransform()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # skimage >= 0.26 prefers from_estimate
        ref.estimate(src, ARCFACE_TEMPLATE)
    np.testing.assert_allclose(similarity_transform(src, ARCFACE_TEMPLATE), ref.params[:2], rtol=1e-9, atol=1e-9)


def test_five_points_from_ibug68_and_mediapipe():
    lm68 = np.arange(136, dtype=float).reshape(68, 2)
    pts = five_points(lm68)
    np.testing.assert_allclose(pts[0], lm68[36:42].mean(0))
    np.testing.assert_allclose(pts[4], lm68[54])
    lm478 = np.random.default_rng(2).normal(size=(478, 2))
    np.testing.assert_allclose(five_points(lm478)[3], lm478[61])
    with pytest.raises(ValueError, match="106"):
        five_points(np.zeros((106, 2)))


def test_arcface_embedding_is_aligned_rgb_normalised_input(arcface_standin, monkeypatch):
    path, w = arcface_standin
    monkeypatch.setitem(W.WEIGHTS, "arcface_w600k_r50",
                        dataclasses.replace(W.WEIGHTS["arcface_w600k_r50"], sha256=sha256_file(path),
                                            size=path.stat().st_size))
    emb = ArcFaceEmbedder(path, keypoints="landmarks")
    frame, lm, box = _face_scene(3)
    (e,) = emb.embed(frame, [(box, lm)])
    crop = align_arcface(frame, five_points(lm))
    # the aligned crop is the patch scaled by 1/1.5 onto the template: check one block's colour
    assert np.abs(crop[56, 56].astype(int) - frame[int(40 + 56 * 1.5), int(60 + 56 * 1.5)].astype(int)).max() <= 40
    np.testing.assert_allclose(e, _expected_embedding(crop, w), rtol=1e-4, atol=1e-5)
    bgr = _expected_embedding(crop[:, :, ::-1], w)
    assert float(e @ bgr) < 0.99  # the test would notice a channel-order mistake


def test_arcface_backend_end_to_end_with_registry(arcface_standin, monkeypatch, tmp_path):
    path, _ = arcface_standin
    monkeypatch.setitem(W.WEIGHTS, "arcface_w600k_r50",
                        dataclasses.replace(W.WEIGHTS["arcface_w600k_r50"], sha256=sha256_file(path),
                                            size=path.stat().st_size))
    # every frame: these four synthetic frames are 0.04 s apart
    metric = IdentitySimilarity(backend="auto", keypoints="landmarks", weights_path=str(path), sample_seconds=0)
    assert metric.backend == "arcface" and metric.needs >= {"landmarks"}
    assert metric.weights() == {"arcface_w600k_r50": sha256_file(path)}
    a, lm_a, box_a = _face_scene(4)
    b, lm_b, box_b = _face_scene(5, offset=(12, 8))  # another identity
    shifted, lm_s, box_s = _face_scene(4, offset=(12, 8))  # person 0 again, moved
    frames = [
        FrameData(0, 0.0, a, faces=(box_a,), landmarks=(lm_a,), landmark_backend="face_alignment"),
        FrameData(1, 0.04, shifted, faces=(box_s,), landmarks=(lm_s,), landmark_backend="face_alignment"),
        FrameData(2, 0.08, b, faces=(box_b,), landmarks=(lm_b,), landmark_backend="face_alignment"),
        FrameData(3, 0.12, a, faces=(None,), landmarks=(None,), landmark_backend="face_alignment"),
    ]
    state = metric.start(None)
    for f in frames:
        metric.update(state, f)
    res = metric.finish(state)
    # frame 1: same face moved by an integer offset -> identical aligned crop -> cos 1;
    # frame 2: another face -> lower; frame 3: missing, counted
    e_same, e_other = 1.0, None
    assert res.details["n_scored"] == {"person0": 2} and res.details["n_missing"] == {"person0": 1}
    emb = metric.embedder
    e0, e2 = emb.embed(a, [(box_a, lm_a)])[0], emb.embed(b, [(box_b, lm_b)])[0]
    e_other = float(e0 @ e2)
    assert e_other < 0.9
    assert res.value == pytest.approx((e_same + e_other) / 2, abs=1e-5)


def test_auto_falls_back_to_dlib_when_arcface_weights_are_missing_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("IE_BENCH_HOME", str(tmp_path))
    monkeypatch.delenv("IE_BENCH_WEIGHT_ARCFACE_W600K_R50", raising=False)
    metric = IdentitySimilarity(backend="auto")
    assert metric.backend == "dlib" and metric.params()["backend"] == "dlib"
    with pytest.raises(ValueError, match="backend"):
        IdentitySimilarity(backend="insightface")


def test_dlib68_keypoints_on_a_real_face_are_in_anatomical_order(interact_11_faces):
    from interactive_eyes.metrics.identity import _Dlib68Keypoints

    frame = interact_11_faces[0]
    kp = _Dlib68Keypoints()
    for box in frame.faces:
        pts = kp(np.ascontiguousarray(frame.rgb), box)
        assert ((pts[:, 0] > box.x1) & (pts[:, 0] < box.x2) & (pts[:, 1] > box.y1) & (pts[:, 1] < box.y2)).all()
        assert pts[0, 0] < pts[2, 0] < pts[1, 0]  # image-left eye, nose, image-right eye
        assert pts[3, 0] < pts[4, 0]  # mouth corners left to right
        assert max(pts[0, 1], pts[1, 1]) < pts[2, 1] < min(pts[3, 1], pts[4, 1])  # eyes above nose above mouth
        m = similarity_transform(pts, ARCFACE_TEMPLATE)
        scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
        assert 0.3 < scale < 1.5  # a ~180 px face maps onto the 112 px template


# --------------------------------------------------------------------------- sampling and batching


class _KeyedEmbedder:
    """Stand-in embedder: the 'crop' is the face box's x1 and the embedding a unit vector rotating
    with it, so cos(e0, e_t) = cos(x1_t - x1_0 in radians / 100) is known in closed form."""

    files: dict = {}

    def __init__(self):
        self.calls = []

    def crops(self, rgb, faces):
        return [float(box.x1) for box, _lm in faces]

    def embed_crops(self, crops):
        self.calls.append(len(crops))
        return [np.array([np.cos(c / 100), np.sin(c / 100)]) for c in crops]


def _synthetic_frames(fps: float, n: int):
    rgb = np.zeros((4, 4, 3), np.uint8)
    return [FrameData(i, i / fps, rgb, faces=(FaceBox(float(i), 0, i + 10.0, 10),)) for i in range(n)]


def _run_keyed(frames, **kw):
    metric = IdentitySimilarity(backend="dlib", **kw)
    metric._embedder = _KeyedEmbedder()
    return _run(metric, None, frames), metric


@pytest.mark.parametrize("fps, expected_step", [(25, 5), (30, 6), (24, 5), (50, 10)])
def test_default_samples_the_first_frame_at_or_after_every_0_2_s(fps, expected_step):
    frames = _synthetic_frames(fps, int(fps * 3))
    res, metric = _run_keyed(frames)
    n = res.details["n_sampled_frames"]
    # 24 fps: 0.2 s is 4.8 frames, so the sampled frames are 0, 5, 10, 15, 20, 24, 29, ... (every 0.2 s)
    assert n == 15  # 3 s / 0.2 s
    first = res.details["first_index"]["person0"]
    assert first == 0
    sims = [np.cos((t - 0) / 100) for t in [int(np.ceil(k * 0.2 * fps - 1e-6)) for k in range(1, 15)]]
    assert res.value == pytest.approx(np.mean(sims), abs=1e-12)
    if fps != 24:
        assert int(np.ceil(0.2 * fps - 1e-6)) == expected_step
    assert metric.params()["sample_seconds"] == 0.2 and metric.params()["frame_stride"] is None
    assert res.details["sampling"] == "first frame at or after every 0.2 s"


def test_frame_stride_still_settable_and_every_frame_modes():
    frames = _synthetic_frames(25, 20)
    res, metric = _run_keyed(frames, frame_stride=3)
    assert res.details["n_sampled_frames"] == 7 and metric.params()["sample_seconds"] is None
    assert res.value == pytest.approx(np.mean([np.cos(i / 100) for i in range(3, 20, 3)]), abs=1e-12)
    for kw in ({"frame_stride": 1}, {"sample_seconds": 0}):
        res, metric = _run_keyed(frames, **kw)
        assert res.details["n_sampled_frames"] == 20 and metric.sampling() == "every frame"
    with pytest.raises(ValueError, match="sample_seconds"):
        IdentitySimilarity(backend="dlib", sample_seconds=-1)


def test_batch_size_changes_calls_not_values():
    frames = _synthetic_frames(25, 100)
    one, m1 = _run_keyed(frames, batch_size=1)
    many, m16 = _run_keyed(frames, batch_size=16)
    assert one.value == many.value and one.details == many.details
    assert m1.embedder.calls == [1] * 20 and m16.embedder.calls == [16, 4]  # 20 sampled faces


def test_dlib_batched_chips_equal_one_call_per_face(interact_11_faces):
    import dlib

    from interactive_eyes.metrics.identity import DlibEmbedder, _rect, _unit

    emb = DlibEmbedder()
    frames = interact_11_faces[:3]
    chips, single = [], []
    for f in frames:
        rgb = np.ascontiguousarray(f.rgb)
        faces = [(b, None) for b in f.faces if b is not None]
        chips += emb.crops(rgb, faces)
        for box, _ in faces:  # dlib's own image+shape call, one face at a time
            shape = emb._sp5(rgb, _rect(dlib, box, rgb.shape))
            single.append(_unit(np.array(emb._rec.compute_face_descriptor(rgb, shape))))
    batched = emb.embed_crops(chips)  # one call for all faces of three frames
    assert len(batched) == len(single) == 6
    np.testing.assert_allclose(np.array(batched), np.array(single), atol=1e-6)


def test_corrupt_arcface_onnx_makes_identity_unavailable_with_one_line(arcface_standin, tmp_path, monkeypatch):
    path, _ = arcface_standin
    for name, data in (("truncated.onnx", path.read_bytes()[:5000]), ("garbage.onnx", b"\x00not onnx" * 50)):
        bad = tmp_path / name
        bad.write_bytes(data)
        # the registry's hash check catches a damaged copy of the real file first ...
        reason = IdentitySimilarity(backend="arcface", weights_path=str(bad), keypoints="landmarks").unavailable()
        assert reason is not None and "\n" not in reason and str(bad) in reason
        # ... and a file that passes it but onnxruntime cannot parse (InvalidProtobuf, not a
        # RuntimeError) is a one-line reason too, never an exception out of unavailable()
        monkeypatch.setitem(W.WEIGHTS, "arcface_w600k_r50",
                            dataclasses.replace(W.WEIGHTS["arcface_w600k_r50"], sha256=sha256_file(bad),
                                                size=bad.stat().st_size))
        reason = IdentitySimilarity(backend="arcface", weights_path=str(bad), keypoints="landmarks").unavailable()
        assert reason is not None and "\n" not in reason
        assert reason.startswith(f"identity (arcface): {bad}: "), reason
        assert "not a valid ONNX file" in reason or "not a loadable ONNX model" in reason  # registry or embedder
        with pytest.raises(ValueError, match="truncated or corrupt"):
            ArcFaceEmbedder(bad, keypoints="landmarks")


# --------------------------------------------------------------------------- sampled vs every frame, real videos


class _SharedEmbedder:
    """The real dlib embedder behind a cache keyed by crop bytes: the sampled run reuses the
    embeddings the every-frame run computed for the same crops (identical inputs, identical output)."""

    def __init__(self, inner):
        self.inner, self.cache, self.files = inner, {}, inner.files

    def crops(self, rgb, faces):
        return self.inner.crops(rgb, faces)

    def embed_crops(self, crops):
        import hashlib

        keys = [hashlib.sha1(np.ascontiguousarray(c).tobytes()).hexdigest() for c in crops]
        todo = [(k, c) for k, c in zip(keys, crops) if k not in self.cache]
        for (k, _), e in zip(todo, self.inner.embed_crops([c for _, c in todo])):
            self.cache[k] = e
        return [self.cache[k] for k in keys]


def every_frame_and_sampled(path, n_people, max_side=None, max_frames=None):
    """Both identity values of one video in one decode (same frames, same dlib boxes)."""
    from interactive_eyes.media.video import iter_frames
    from interactive_eyes.metrics.identity import DlibEmbedder

    shared = _SharedEmbedder(DlibEmbedder())
    every = IdentitySimilarity(backend="dlib", sample_seconds=0, batch_size=1)
    sampled = IdentitySimilarity(backend="dlib")  # the default: every 0.2 s, batched
    every._embedder = sampled._embedder = shared
    s_every, s_sampled = every.start(None), sampled.start(None)
    for fr in iter_frames(path, max_side=max_side):
        if max_frames is not None and fr.index >= max_frames:
            break
        rgb = np.ascontiguousarray(fr.rgb)
        boxes = detect_faces_dlib(rgb, upsample=0)
        frame = FrameData(fr.index, fr.time, rgb, faces=tuple(boxes) if len(boxes) == n_people else (None,) * n_people)
        every.update(s_every, frame)  # batch 1: embedded now, so the sampled run finds it cached
        sampled.update(s_sampled, frame)
    return every.finish(s_every), sampled.finish(s_sampled)


# (file under the shared data, people, decode size, frames): the 1080x1920 videos decoded at 960 px
# (faces stay > 200 px); the talking heads cut to their first 150 frames (5-6 s) to bound the
# test's time (whole-length figures: benchmarks/fid_fvd_identity_speed.py --identity-only).
REAL_VIDEOS = [("interactive_eyes/interact_11.mp4", 2, None, None),
               ("talking_heads/infinitetalk_ref_video.mp4", 1, None, 150),
               ("talking_heads/latentsync_demo1.mp4", 1, 960, 150),
               ("talking_heads/latentsync_demo3.mp4", 1, 960, 150)]


@pytest.mark.slow
@pytest.mark.parametrize("rel, n_people, max_side, max_frames", REAL_VIDEOS, ids=[v[0].split("/")[1] for v in REAL_VIDEOS])
def test_default_sampling_is_within_0_002_of_every_frame(test_data, rel, n_people, max_side, max_frames):
    pytest.importorskip("dlib")
    every, sampled = every_frame_and_sampled(test_data / rel, n_people, max_side, max_frames)
    print(f"identity {rel}: every frame {every.value:.5f} ({every.details['n_sampled_frames']} frames), "
          f"sampled {sampled.value:.5f} ({sampled.details['n_sampled_frames']} frames)")
    assert every.status == sampled.status == "ok"
    assert every.details["n_sampled_frames"] >= 4.5 * sampled.details["n_sampled_frames"]  # 5-6x fewer faces
    assert abs(every.value - sampled.value) < 0.002
    for role, v in every.per_person.items():
        assert abs(v - sampled.per_person[role]) < 0.002, role
