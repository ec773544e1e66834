"""The face-alignment backend: FAN architecture/loading, crop geometry, heatmap decoding, offline error.

The real 2D-FAN-4 weights cannot be downloaded here; the loading path is exercised on tiny
random-initialised FANs of the same architecture saved as plain state dicts (the format of
``2DFAN4-11f355bf06.pth.tar``), and the geometry on an analytic stand-in network whose heatmaps
are the crop's own red channel, so the right answer is known.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from interactive_eyes.faces import fan  # noqa: E402
from interactive_eyes.faces.types import FaceBox  # noqa: E402


def test_full_size_fan_has_the_released_state_dict_layout():
    net = fan.build_fan()  # 2D-FAN-4: 4 stacks, 256 channels, depth 4, 68 points
    sd = net.state_dict()
    assert sd["conv1.weight"].shape == (64, 3, 7, 7)
    assert sd["conv2.downsample.2.weight"].shape == (128, 64, 1, 1)
    assert "conv3.downsample.0.weight" not in sd  # 128 -> 128: identity skip
    assert sd["conv4.conv1.weight"].shape == (128, 128, 3, 3)
    assert sd["m3.b2_plus_1.conv3.weight"].shape == (64, 64, 3, 3)
    assert {f"m0.b{t}_{lv}.bn1.running_mean" for t in (1, 2, 3) for lv in (1, 2, 3, 4)} <= set(sd)
    assert sd["l3.weight"].shape == (68, 256, 1, 1)
    assert sd["al2.weight"].shape == (256, 68, 1, 1) and "bl3.weight" not in sd and "al3.weight" not in sd
    assert fan.fan_shape(sd) == {"n_stacks": 4, "width": 256, "depth": 4, "n_points": 68}
    n_params = sum(v.numel() for k, v in sd.items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    assert 23_000_000 < n_params < 25_000_000  # 2D-FAN-4 is a ~24M-parameter network


def _tiny_fan_file(tmp_path, wrap=False):
    torch.manual_seed(0)
    net = fan.build_fan(n_stacks=2, width=16, depth=2, n_points=68)
    for m in net.modules():  # non-trivial BN statistics, so a wrong key mapping would show
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    path = tmp_path / "2DFAN4-tiny.pth.tar"
    torch.save({"state_dict": net.state_dict()} if wrap else net.state_dict(), path)
    return net.eval(), path


@pytest.mark.parametrize("wrap", [False, True])
def test_load_fan_reads_a_saved_state_dict_strictly(tmp_path, wrap):
    ref, path = _tiny_fan_file(tmp_path, wrap)
    net = fan.load_fan(path)
    x = torch.rand(2, 3, 64, 64)  # fully convolutional: a small input keeps the test fast
    with torch.inference_mode():
        out, expected = net(x), ref(x)
    assert out.shape == (2, 68, 16, 16)
    torch.testing.assert_close(out, expected)


def test_load_fan_rejects_other_files(tmp_path):
    bad = tmp_path / "not_fan.pth"
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match=r"not_fan\.pth: not a FAN state dict"):
        fan.load_fan(bad)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"hello")
    with pytest.raises(ValueError, match=r"junk\.pth: not a readable torch weights file"):
        fan.load_fan(junk)


def test_decode_heatmaps_finds_gaussian_peaks_to_a_quarter_cell():
    rng = np.random.default_rng(0)
    truth = rng.uniform(3, 60, size=(68, 2))
    yy, xx = np.mgrid[0:64, 0:64] + 0.5  # cell centres
    heat = np.exp(-((xx[None] - truth[:, 0, None, None]) ** 2 + (yy[None] - truth[:, 1, None, None]) ** 2) / (2 * 1.5 ** 2))
    got = fan.decode_heatmaps(heat)
    # argmax cell centre is within 0.5 cell; the quarter step towards the larger neighbour halves that
    assert np.max(np.abs(got - truth)) <= 0.25 + 1e-9
    edge = np.zeros((1, 64, 64))
    edge[0, 10, 0], edge[0, 10, 1], edge[0, 11, 0] = 1.0, 0.5, 0.9  # a maximum on the border: no step
    np.testing.assert_array_equal(fan.decode_heatmaps(edge), [[0.5, 10.5]])


class RedChannelNet(torch.nn.Module):
    """Stand-in with FAN's contract: (B, 3, 256, 256) -> (B, 68, 64, 64); each heatmap is the red
    channel averaged over 4x4 blocks, so every point is wherever the red dot is."""

    def forward(self, x):
        red = torch.nn.functional.avg_pool2d(x[:, :1], 4)
        return red.repeat(1, 68, 1, 1)


def test_backend_geometry_maps_heatmaps_back_to_frame_pixels():
    frame = np.zeros((480, 640, 3), np.uint8)
    dot = (301.5, 187.5)  # continuous coordinates of the centre of a 4x4 block at pixels 300..303 / 186..189
    frame[186:190, 300:304, 0] = 255
    backend = fan.FaceAlignmentBackend(network=RedChannelNet())
    box = FaceBox(230, 150, 390, 330)
    out = backend.locate(frame, [box, None], [None, None])
    assert out[1] is None
    pts = out[0]
    assert pts.shape == (68, 2)
    left, top, side = fan.crop_transform(box)
    cell = side / 64  # one heatmap cell in frame pixels
    assert np.max(np.abs(pts - np.array(dot))) <= 0.5 * cell
    # crop rule (spec §6.2): centre moved up by 0.12 h, side 200 (w + h) / 195
    assert side == pytest.approx(200 * (160 + 180) / 195)
    assert top + side / 2 == pytest.approx(240 - 0.12 * 180)


def test_backend_batches_all_people_of_a_frame(tmp_path):
    _, path = _tiny_fan_file(tmp_path)
    backend = fan.FaceAlignmentBackend(weights_path=path)
    rgb = np.random.default_rng(1).integers(0, 255, (300, 400, 3), dtype=np.uint8)
    out = backend.locate(rgb, [FaceBox(10, 10, 110, 120), FaceBox(200, 50, 320, 180)], [None, None])
    assert [o.shape for o in out] == [(68, 2), (68, 2)]
    assert backend.describe()["weights_file"] == str(path)


def test_missing_weights_offline_is_a_one_line_error_naming_the_url(monkeypatch, tmp_path):
    from interactive_eyes.weights import WeightsMissingError

    monkeypatch.setenv("IE_BENCH_HOME", str(tmp_path))
    monkeypatch.delenv("IE_BENCH_WEIGHT_FAN_2DFAN4", raising=False)
    with pytest.raises(WeightsMissingError) as err:
        fan.FaceAlignmentBackend(offline=True)
    msg = str(err.value)
    assert "\n" not in msg
    assert "https://www.adrianbulat.com/downloads/python-fan/2DFAN4-11f355bf06.pth.tar" in msg
    assert str(tmp_path) in msg


def test_tracker_runs_the_face_alignment_backend_on_its_boxes(tmp_path):
    from interactive_eyes.faces.synthetic import Shot, astronaut
    from interactive_eyes.faces.track import FaceTracker

    _, path = _tiny_fan_file(tmp_path)
    frame = Shot(astronaut(), size=(480, 400)).render()
    with FaceTracker(1, landmarks="fan", backend_options={"weights_path": str(path)}) as tr:
        boxes, lms = tr.update(frame, 0.0)
        summary = tr.summary()
    assert boxes[0] is not None and lms[0].shape == (68, 2)
    assert summary.landmark_backend == "face-alignment" and summary.n_landmarks == 68
    # the random network's points stay inside FAN's crop around the tracked face
    left, top, side = fan.crop_transform(boxes[0])
    assert np.all((lms[0] >= [left, top]) & (lms[0] <= [left + side, top + side]))
