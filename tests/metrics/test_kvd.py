"""KVD through FVD's feature path, with a TorchScript stand-in of StyleGAN-V's I3D (same call
signature, same file format, registered under its own SHA-256), as test_fvd.py does."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
metric_kid = pytest.importorskip("torch_fidelity.metric_kid")

from click.testing import CliRunner  # noqa: E402

from interactive_eyes.app.cli import main  # noqa: E402
from interactive_eyes.metrics.base import FrameData  # noqa: E402
from interactive_eyes.metrics.fvd import FVD  # noqa: E402
from interactive_eyes.metrics.kvd import KVD  # noqa: E402
from interactive_eyes.stats.kernel import KernelSampleSizeWarning, kernel_distance  # noqa: E402
from interactive_eyes.stats.reference import ReferenceError  # noqa: E402
from weight_files import register_file, save_torchscript  # noqa: E402  (the shared helper module of this folder)


class StandInI3D(torch.nn.Module):
    """The detector's contract: B×3×T×H×W in [0, 255], keyword flags, 400-d output."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.conv = torch.nn.Conv3d(3, 4, kernel_size=3, padding=1)
        self.proj = torch.nn.Linear(5, 399)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False,
                return_features: bool = False) -> torch.Tensor:
        if x.dim() != 5 or x.shape[1] != 3 or x.shape[2] < 10:
            raise ValueError("expected B x 3 x T>=10 x H x W")
        if rescale:
            x = x / 127.5 - 1.0
        if resize:
            x = torch.nn.functional.interpolate(x, size=(x.shape[2], 56, 56), mode="trilinear", align_corners=False)
        if not return_features:
            raise ValueError("stand-in only returns features")
        mean = x.mean(dim=(1, 2, 3, 4)).unsqueeze(1)
        h = torch.relu(self.conv(x)).mean(dim=(2, 3, 4))
        return torch.cat([mean, torch.tanh(self.proj(torch.cat([h, mean], dim=1)))], dim=1)


@pytest.fixture(scope="module")
def standin_file(tmp_path_factory):
    return save_torchscript(StandInI3D(), tmp_path_factory.mktemp("i3d") / "i3d_torchscript.pt")


@pytest.fixture
def registered(standin_file, monkeypatch):
    register_file(monkeypatch, "i3d_torchscript", standin_file)
    monkeypatch.setenv("IE_BENCH_WEIGHT_I3D_TORCHSCRIPT", str(standin_file))
    return standin_file


def _video(seed: int, n: int, shift: int = 0, h=24, w=32) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 200, (h, w, 3))
    return [np.clip(base + shift + rng.integers(0, 40, (h, w, 3)), 0, 255).astype(np.uint8) for _ in range(n)]


def _run(metric, frames):
    state = metric.start(None)
    for i, f in enumerate(frames):
        metric.update(state, FrameData(index=i, time=i / 25, rgb=f))
    return metric.finish(state)


def test_kvd_uses_fvd_clips_and_equals_torch_fidelity(registered):
    kvd, fvd = KVD(), FVD()
    videos = [_video(1, 50), _video(2, 40)]  # 3 + 2 clips; tails of 2 and 8 frames are dropped
    refs = [_video(3, 64, shift=30)]  # 4 clips
    results = [_run(kvd, v) for v in videos]
    assert [r.details["n_clips"] for r in results] == [3, 2]
    assert [r.details["n_frames_unused"] for r in results] == [2, 8]
    clips = [np.stack(v[i:i + 16]) for v in videos for i in range(0, len(v) - 15, 16)]
    expected_gen = fvd.features(clips)  # FVD's own feature path on the same 16-frame clips
    got = np.concatenate([r.stats["features"] for r in results])
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected_gen, rtol=1e-5, atol=1e-6)

    ref_clips = [np.stack(refs[0][i:i + 16]) for i in range(0, 64, 16)]
    reference = {"features": fvd.features(ref_clips)}
    with pytest.warns(KernelSampleSizeWarning, match="kvd: generated set has 5 and reference set has 4"):
        res = kvd.reduce([r.stats for r in results], reference)
    tf = metric_kid.kid_features_to_metric(torch.from_numpy(got.astype(np.float64)),
                                           torch.from_numpy(reference["features"].astype(np.float64)),
                                           kid_subset_size=4, verbose=False)
    assert res.value == pytest.approx(tf["kernel_inception_distance_mean"], rel=1e-6)
    assert res.details["kvd_std"] == pytest.approx(tf["kernel_inception_distance_std"], rel=1e-6)
    assert res.value > 0 and (res.n_samples, res.details["n_reference"], res.details["n_videos"]) == (5, 4, 2)


def test_short_video_is_skipped_and_cap_is_respected(registered):
    assert _run(KVD(), _video(4, 15)).status == "skipped"
    capped = _run(KVD(max_clips_per_video=1), _video(5, 40))
    assert capped.stats["features"].shape == (1, 400)


def test_stats_file_features_and_refusal_of_files_without_them(registered, tmp_path):
    from interactive_eyes.media.video import write_video

    videos = tmp_path / "videos"
    videos.mkdir()
    write_video(videos / "a.mp4", _video(6, 34), fps=25)  # 2 clips
    write_video(videos / "b.mp4", _video(7, 12), fps=25)  # too short: no clip
    out = CliRunner().invoke(main, ["stats", str(videos), "-o", str(tmp_path / "ref.npz"), "--metric", "fvd"])
    assert out.exit_code == 0, out.output
    assert "2 samples, 400-d (fvd), per-sample features stored (for kvd)" in out.output
    kvd = KVD()
    from_file = kvd.load_reference(tmp_path / "ref.npz")
    from_folder = kvd.load_reference(videos, progress=False)
    assert from_file["features"].shape == (2, 400)
    np.testing.assert_array_equal(from_file["features"], from_folder["features"])
    out = CliRunner().invoke(main, ["stats", str(videos), "-o", str(tmp_path / "old.npz"), "--metric", "fvd",
                                    "--no-features"])
    assert out.exit_code == 0, out.output
    with pytest.raises(ReferenceError, match="holds no per-sample features, which kvd needs"):
        kvd.load_reference(tmp_path / "old.npz")
    with pytest.raises(ReferenceError, match="clip_len"):
        KVD(clip_len=12).load_reference(tmp_path / "ref.npz")


def test_identical_sets_give_about_zero(registered):
    kvd = KVD()
    res = _run(kvd, _video(8, 96))  # 6 clips
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", KernelSampleSizeWarning)
        same = kvd.reduce([res.stats], {"features": res.stats["features"].copy()})
        other = kvd.reduce([res.stats], {"features": _run(kvd, _video(9, 96, shift=60)).stats["features"]})
    assert same.value == pytest.approx(kernel_distance(res.stats["features"], res.stats["features"]).mean, rel=1e-12)
    assert abs(same.value) < 0.1 * other.value


def test_score_reads_fvd_and_kvd_from_one_stats_file_and_resumes(registered, tmp_path):
    """`ie-bench stats --metric fvd` once, then `ie-bench score --reference ref.npz` reaches both
    fvd and kvd; the per-clip features go through the engine's .npz files and the value equals
    the kernel distance of the same features; a second run resumes with the identical value."""
    import json

    from interactive_eyes.media.video import write_video

    gen, ref = tmp_path / "gen", tmp_path / "ref"
    gen.mkdir(), ref.mkdir()
    clips = []
    for i in range(2):
        write_video(gen / f"c{i}.mp4", _video(20 + i, 34), fps=25)  # 2 clips each
        write_video(ref / f"r{i}.mp4", _video(30 + i, 50, shift=40), fps=25)  # 3 clips each
        clips.append({"id": f"c{i}", "duration": 34 / 25,
                      "people": [{"role": "p0", "audio": f"c{i}.wav", "speaking": [[0.0, 1.0]]}]})
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({"schema": "ie-bench/manifest", "schema_version": 1, "name": "t", "version": "0",
                                    "clips": clips}))
    runner = CliRunner()
    out = runner.invoke(main, ["stats", str(ref), "-o", str(tmp_path / "ref.npz"), "--metric", "fvd"])
    assert out.exit_code == 0, out.output
    argv = ["score", str(gen), "--manifest", str(manifest), "--metrics", "fvd,kvd", "--allow-silent",
            "--reference", str(tmp_path / "ref.npz"), "--out", str(tmp_path / "out"), "--json"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the sample-size warnings of 4 vs 6 clips
        first = runner.invoke(main, argv)
        again = runner.invoke(main, argv)
    assert first.exit_code == 0, first.output
    res = json.loads(first.output[first.output.index("{"):])
    kvd, fvd = res["metrics"]["kvd"], res["metrics"]["fvd"]
    assert kvd["reference"]["source"] == fvd["reference"]["source"] == str(tmp_path / "ref.npz")
    assert (kvd["n_ok"], kvd["n_samples"], kvd["details"]["n_reference"]) == (2, 4, 6)
    feats = KVD().load_reference(gen, progress=False)["features"]  # the same clips, straight from the videos
    assert kvd["value"] == pytest.approx(kernel_distance(feats, KVD().load_reference(ref, progress=False)["features"]).mean,
                                         rel=1e-6)
    assert "sample_size_warning" in kvd["details"] and fvd["value"] is not None
    assert json.loads(again.output[again.output.index("{"):])["metrics"]["kvd"]["value"] == kvd["value"]
