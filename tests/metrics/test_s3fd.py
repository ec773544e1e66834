"""S3FD detection and IoU tracking (the lip-sync metric's ``detector="s3fd"`` option) against
syncnet-python 0.2.3's own S3FD code and ``SyncNetPipeline._track`` on identical inputs.

What this verifies: the state-dict layout (strict load both ways), the network, anchors, box
decoding, score threshold, both NMS stages, and the tracking rules. Weights are random (the
real ``sfd_face.pth`` cannot be downloaded here), so detection *quality* is not verified.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch

from interactive_eyes.metrics import s3fd

pytest.importorskip("syncnet_python", reason="syncnet-python (test dependency) is the reference")
ref_s3fd = importlib.import_module("syncnet_python.detectors.s3fd")
ref_nets = importlib.import_module("syncnet_python.detectors.s3fd.nets")
pipeline = importlib.import_module("syncnet_python.syncnet_pipeline")

torch.set_grad_enabled(False)


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    """Random S3FD weights in the reference's own layout, with the face-score heads scaled up so
    that some anchors score above 0.5 (plain random init keeps every softmax near 0.5)."""
    torch.manual_seed(0)
    ref = ref_nets.S3FDNet(device="cpu")
    state = ref.state_dict()
    for k in range(6):
        state[f"conf.{k}.weight"] *= 8  # spreads scores over (0.5, 0.998) without float ties
    path = tmp_path_factory.mktemp("s3fd") / "sfd_face.pth"
    torch.save(state, path)
    return path


def _image(h=384, w=512, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 / w, yy * 255 / h, rng.integers(0, 256, (h, w))], 2)
    img[100:260, 180:320] = [220, 170, 150]
    # noise everywhere: uniform regions give identical anchor scores, whose NMS order is arbitrary
    img = img + rng.normal(0, 12, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def test_key_layout_is_the_reference_layout(weights_file, tmp_path):
    ours = s3fd.S3FDNet()
    assert set(ours.state_dict()) == set(ref_nets.S3FDNet(device="cpu").state_dict())
    det, path = s3fd.load_s3fd(weights_file)
    assert path == weights_file
    bad = dict(torch.load(weights_file, weights_only=True))
    bad.pop("L2Norm4_3.weight")
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(RuntimeError, match=r"bad\.pth: not an S3FD state dict .*L2Norm4_3\.weight"):
        s3fd.load_s3fd(tmp_path / "bad.pth")


@pytest.mark.parametrize("scale,conf_th", [(0.25, 0.9), (0.25, 0.5), (0.5, 0.8)])  # 0.25 / 0.9: the pipeline
def test_detections_equal_the_reference_detector(weights_file, scale, conf_th):
    ours, _ = s3fd.load_s3fd(weights_file)
    net = ref_nets.S3FDNet(device="cpu")
    net.load_state_dict(torch.load(weights_file, weights_only=True))
    ref = ref_s3fd.S3FD(net, device="cpu")
    img = _image()
    theirs = ref.detect_faces(img, conf_th=conf_th, scales=[scale])
    mine = ours.detect(img, conf_th=conf_th, scale=scale)
    # the seeded random net gives 31 / 38 / 120 reference detections for the three cases: enough
    # boxes (scores spread over 0.5..0.998) that the comparison below means something
    assert len(theirs) >= 30, "the test needs detections to compare"
    assert mine.shape == theirs.shape
    order_t = np.lexsort(theirs.T[::-1])
    order_m = np.lexsort(mine.T[::-1])
    # measured: scores identical, coordinates (up to ~1280 px) within one float32 ulp (1.2e-4 at
    # 1024..2048, i.e. 1e-7 relative): 1e-6 relative is what the comparison achieves, with margin
    np.testing.assert_allclose(mine[order_m], theirs[order_t], rtol=1e-6, atol=1e-6)


def _synthetic_detections(n_frames=160, seed=0):
    """Two faces drifting, missed frames (short and long gaps), a jump, and false positives."""
    rng = np.random.default_rng(seed)
    dets = []
    for f in range(n_frames):
        faces = []
        if not (40 <= f < 43 or 90 <= f < 122):  # face A: a 3-frame gap and a 32-frame gap
            x = 100 + 0.5 * f + rng.normal(0, 1)
            faces.append([x, 80 + rng.normal(0, 1), x + 120, 230, 0.99])
        if f < 70 or f >= 75:  # face B jumps at frame 75
            x = 400 + (0 if f < 75 else 90) + rng.normal(0, 1)
            faces.append([x, 90, x + 110, 240 + rng.normal(0, 1), 0.97])
        if f % 37 == 5:
            faces.append([10, 10, 30, 30, 0.95])  # a tiny false positive
        faces.sort(key=lambda d: -d[4])
        dets.append(faces)
    return dets


@pytest.mark.parametrize("min_track,min_face_size,n_tracks", [(0, 0, 10), (5, 0, 5), (50, 100, 2)])
def test_tracks_equal_the_reference_tracker(min_track, min_face_size, n_tracks):
    """Includes the reference's quirk: a track looks only at the first detection its frame has
    left, so when face A reappears at frame 122 (higher score, listed first) face B's track stops
    at 121 and B continues in a new track (10 tracks with no filters, not 9)."""
    dets = _synthetic_detections()
    cfg = pipeline.PipelineConfig(min_track=min_track, min_face_size=min_face_size)
    fake = type("P", (), {"cfg": cfg, "_iou": staticmethod(pipeline.SyncNetPipeline._iou)})()
    ref_in = [[{"frame": f, "bbox": d[:4], "conf": d[4]} for d in faces] for f, faces in enumerate(dets)]
    theirs = pipeline.SyncNetPipeline._track(fake, ref_in)

    tracker = s3fd.IouTracker()
    done = []
    for f, faces in enumerate(dets):
        done += tracker.expired(f)
        tracker.update(f, np.array(faces).reshape(-1, 5))
    done += tracker.tracks
    mine = []
    for t in sorted(done, key=lambda t: t.id):
        if len(t.frames) <= min_track:
            continue
        frames, boxes = s3fd.interpolate_track(t.frames, t.boxes)
        if max(np.mean(boxes[:, 2] - boxes[:, 0]), np.mean(boxes[:, 3] - boxes[:, 1])) > min_face_size:
            mine.append((frames, boxes))
    assert len(theirs) == n_tracks
    assert len(mine) == len(theirs)
    for (frames, boxes), ref in zip(mine, theirs):
        np.testing.assert_array_equal(frames, ref["frame"])
        np.testing.assert_allclose(boxes, ref["bbox"], rtol=0, atol=1e-9)
