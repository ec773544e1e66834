"""The single-person protocol end to end, on the three shared talking-head videos.

manifest build (the videos are the ground truth, their first frames the reference images)
-> ``ie-bench run --method static`` -> ``ie-bench score`` against the ground truth.

The videos are cut to their first 1.6 s and scaled to 160 px wide to keep this fast (the
metrics see exactly these files on both sides). Real weights cannot be downloaded here: FID runs
pytorch-fid's Inception with random weights (BatchNorm calibrated on noise), FVD a TorchScript
stand-in with the real detector's call signature, SyncNet random weights, identity dlib's bundled
models; the registry entries are pointed at those files.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import warnings

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from interactive_eyes import weights as W
from interactive_eyes.app.cli import main
from interactive_eyes.download import sha256_file

SECONDS = 1.6
WIDTH = 128


# --------------------------------------------------------------------------- random-weight files


class _StandInI3D(torch.nn.Module):
    """The detector's signature: B×3×T×H×W in [0, 255], rescale/resize inside, 400-d features."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.conv = torch.nn.Conv3d(3, 8, kernel_size=3, padding=1)
        self.proj = torch.nn.Linear(8, 400)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False,
                return_features: bool = False) -> torch.Tensor:
        if rescale:
            x = x / 127.5 - 1.0
        if resize:
            x = torch.nn.functional.interpolate(x, size=(x.shape[2], 224, 224), mode="trilinear", align_corners=False)
        return torch.tanh(self.proj(torch.relu(self.conv(x)).mean(dim=(2, 3, 4))))


def _fid_inception_file(path):
    import pytorch_fid.inception as pfi
    import torchvision

    torch.manual_seed(0)
    base = torchvision.models.inception_v3(num_classes=1008, aux_logits=False, weights=None, init_weights=True)
    original = pfi.load_state_dict_from_url
    pfi.load_state_dict_from_url = lambda url, **kw: base.state_dict()
    try:
        net = pfi.fid_inception_v3()
    finally:
        pfi.load_state_dict_from_url = original
    for mod in net.modules():  # calibrate BatchNorm on noise, else random activations explode
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.reset_running_stats()
            mod.momentum = None
    net.train()
    with torch.no_grad():
        net(torch.rand(4, 3, 299, 299) * 2 - 1)
    torch.save(net.state_dict(), path)
    return path


def _register(monkeypatch, name, path):
    spec = W.WEIGHTS[name]
    monkeypatch.setitem(W.WEIGHTS, name, dataclasses.replace(spec, sha256=sha256_file(path), size=path.stat().st_size,
                                                             sha256_prefix=None))


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory):
    from interactive_eyes.metrics import syncnet as sn

    d = tmp_path_factory.mktemp("weights")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated; the real file is TorchScript
        torch.jit.script(_StandInI3D().eval()).save(str(d / "i3d.pt"))
    torch.manual_seed(0)
    return {"pt_inception": _fid_inception_file(d / "inception.pth"), "i3d_torchscript": d / "i3d.pt",
            "syncnet_v2": sn.save_state_dict_like_reference(sn.SyncNet().eval(), d / "syncnet_v2.model")}


@pytest.fixture
def registered(weight_files, monkeypatch):
    monkeypatch.setenv("IE_BENCH_OFFLINE", "1")  # identity: dlib's bundled models (no ArcFace here)
    for name in ("pt_inception", "i3d_torchscript", "syncnet_v2"):
        _register(monkeypatch, name, weight_files[name])
        monkeypatch.setenv(W.WEIGHTS[name].env_var, str(weight_files[name]))  # checked against the entry above
    return weight_files


# --------------------------------------------------------------------------- the pipeline


def _small_copy(src, dest):
    """The first SECONDS of ``src`` at WIDTH x WIDTH, with its audio, as H.264 + AAC.

    The portrait videos (1080x1920, a seated person) are cut to a square around the face first
    (side 0.6 W centred at 0.55 W, 0.34 H: both faces lie there), else the face is too small a
    part of the frame for the face detector once scaled down."""
    from PIL import Image

    from interactive_eyes.media.audio import load_audio
    from interactive_eyes.media.video import iter_frames, probe, write_video

    info = probe(src)
    n = int(round(SECONDS * info.fps))
    box = None
    if info.height > info.width:
        side, cx, cy = 0.6 * info.width, 0.55 * info.width, 0.34 * info.height
        box = tuple(int(round(v)) for v in (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2))
    frames = []
    for f in iter_frames(src):
        if f.index >= n:
            break
        im = Image.fromarray(f.rgb)
        frames.append(np.asarray((im.crop(box) if box else im).resize((WIDTH, WIDTH), Image.BILINEAR)))
    audio = load_audio(src, None, mono=False)[: int(SECONDS * info.audio_rate)]
    write_video(dest, frames, info.fps, audio=audio, audio_rate=info.audio_rate)


@pytest.fixture(scope="module")
def pipeline(test_data, tmp_path_factory):
    from interactive_eyes.app.run import run_method

    base = tmp_path_factory.mktemp("single")
    gt = base / "videos"
    gt.mkdir()
    for src in sorted((test_data / "talking_heads").glob("*.mp4")):
        _small_copy(src, gt / src.name)
    r = CliRunner().invoke(main, ["manifest", "build", str(gt), "--out", str(base / "th.json"), "--root",
                                  str(base / "root"), "--reference-frames", str(base / "frames")])
    assert r.exit_code == 0, r.output
    run_method("static", benchmark=str(base / "th.json"), out_dir=base / "static", reference_frames=base / "frames",
               data_root=base / "root", progress=False)
    return base


def _options(weights) -> list[str]:
    """Fast settings: FID at 64-d on every 4th frame (2048-d sqrtm costs ~45 s on this machine)."""
    from interactive_eyes.metrics import METRICS

    opts = ["--option", "fid.dims=64", "--option", "fid.frame_stride=4"]
    if "kid" in METRICS:
        accepted = inspect.signature(METRICS.get("kid").__init__).parameters
        opts += [x for k, v in (("dims", 64), ("frame_stride", 4)) if k in accepted
                 for x in ("--option", f"kid.{k}={v}")]
    return opts


def _score(base, generated, weights, *extra):
    out = base / f"scored_{generated.name}_{len(extra)}"
    r = CliRunner().invoke(main, ["score", str(generated), "--manifest", str(base / "th.json"), "--root",
                                  str(base / "root"), "--out", str(out), *_options(weights), *extra])
    return r, json.loads((out / "results.json").read_text()) if (out / "results.json").is_file() else None


@pytest.mark.slow
def test_static_against_the_ground_truth_and_the_ground_truth_against_itself(pipeline, registered):
    from interactive_eyes.metrics import METRICS

    base = pipeline
    r, res = _score(base, base / "static", registered, "--reference", str(base / "root" / "videos"))
    assert r.exit_code == 0, r.output
    expected = {"sync", "identity", "fid", "fvd"} | ({"kid", "kvd"} & set(METRICS.names()))
    assert set(res["metrics"]) == expected and res["protocol"]["name"] == "single"
    for name in expected:
        assert res["metrics"][name]["n_ok"] == 3, (name, res["metrics"][name])
    # the reference is the ground truth, read with the generated side's sampling
    fid, fvd = res["metrics"]["fid"], res["metrics"]["fvd"]
    assert fid["reference"]["source"] == str(base / "root" / "videos")
    # ground truth: 40, 40 and 48 frames (1.6 s at 25, 25, 30 fps) -> every 4th: 10 + 10 + 12 frames;
    # FVD: 2 + 2 + 3 clips of 16 frames. static writes 40 frames at 25 fps for each clip: 30 frames, 6 clips
    assert fid["details"]["n_reference"] == 32 and fid["details"]["n_generated"] == 30
    assert fvd["details"]["n_clips_reference"] == 7 and fvd["details"]["n_clips_generated"] == 6
    # Sync-C on the video's own audio, whole clip: a single value per clip, no per-person masks
    per_clip = [json.loads(line) for line in (base / "scored_static_2" / "per_clip.jsonl").read_text().splitlines()]
    syncs = [rec for rec in per_clip if rec["metric"] == "sync" and rec["status"] == "ok"]
    assert len(syncs) == 3 and all(np.isfinite(rec["value"]) for rec in syncs)
    # a still image keeps its identity: first-vs-rest cosine ~1 on the static video
    assert res["metrics"]["identity"]["value"] > 0.99

    # `ie-bench stats` caches the ground truth's statistics; scoring against the file gives the same FID
    # (the per-clip statistics of the run above are reused: same folder, same cache keys)
    npz = base / "gt_fid.npz"
    r = CliRunner().invoke(main, ["stats", str(base / "root" / "videos"), "-o", str(npz), "--metric", "fid",
                                  "--dims", "64", "--frame-stride", "4"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["score", str(base / "static"), "--manifest", str(base / "th.json"), "--root",
                                  str(base / "root"), "--out", str(base / "scored_static_2"), "--metrics", "fid",
                                  "--reference", str(npz), *_options(registered)[:4]])
    assert r.exit_code == 0, r.output
    cached = json.loads((base / "scored_static_2" / "results.json").read_text())["metrics"]["fid"]
    assert cached["value"] == pytest.approx(fid["value"], rel=1e-9) and cached["details"]["n_reference"] == 32

    # the ground truth scored against itself (the reference defaults to the manifest's videos)
    r, self_res = _score(base, base / "root" / "videos", registered)
    assert r.exit_code == 0, r.output
    assert self_res["protocol"]["ground_truth"] == str(base / "root" / "videos")
    assert abs(self_res["metrics"]["fid"]["value"]) < 1e-3 and abs(self_res["metrics"]["fvd"]["value"]) < 1e-3
    # even random features tell a still frame from the moving ground truth
    assert fid["value"] > 100 * abs(self_res["metrics"]["fid"]["value"]) and fid["value"] > 1e-3
    if "kid" in self_res["metrics"]:
        # KID of a set against itself is not exactly 0: the unbiased MMD² of X with X is
        # -(2/n) (mean k(x,x) - mean over i != j of k(x_i, x_j)), an O(1/n) term, k(x, y) = (x.y/d + 1)^3
        # (with n below the subset size every subset is the whole set, so the subsets change nothing)
        from interactive_eyes.metrics import METRICS

        kid = self_res["metrics"]["kid"]
        feats = METRICS.get("kid")(dims=64, frame_stride=4).load_reference(base / "root" / "videos")["features"]
        x = np.asarray(feats, np.float64)
        k = (x @ x.T / x.shape[1] + 1.0) ** 3
        n = len(x)
        expected = -(2.0 / n) * (np.mean(np.diag(k)) - (k.sum() - np.trace(k)) / (n * (n - 1)))
        assert kid["value"] == pytest.approx(expected, rel=1e-4, abs=1e-9)
    print("static vs ground truth:", {m: round(v["value"], 5) for m, v in res["metrics"].items()},
          "ground truth vs itself:", {m: round(v["value"], 7) for m, v in self_res["metrics"].items()})


def test_single_protocol_refuses_two_people(test_data, tmp_path, registered):
    r = CliRunner().invoke(main, ["score", str(tmp_path), "--protocol", "single", "--root",
                                  str(test_data / "interactive_eyes")])
    assert r.exit_code == 2
    assert "single-person protocol needs one person per clip; clip interact_1 has 2" in r.output


def test_a_generated_size_other_than_the_ground_truths_is_resized_inside_the_network(registered):
    """ie-bench hands FID's network each frame at its own size; pytorch-fid's InceptionV3 resizes
    it (bilinear to 299x299, align_corners=False, aspect ratio not kept) — the same for a 96x128
    generated frame and a 128x128 ground-truth frame. Checked against the network built without
    its resize and fed the frame resized by hand."""
    import pytorch_fid.inception as pfi
    import torch.nn.functional as F

    from interactive_eyes.metrics.fid import FID

    metric = FID(dims=64)
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    mine = metric.features([frame])
    net = metric.model
    net.resize_input = False
    try:
        x = torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255.0
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        with torch.no_grad():
            ref = F.adaptive_avg_pool2d(net(x)[0], (1, 1)).flatten(1).numpy()
    finally:
        net.resize_input = True
    assert pfi.InceptionV3.DEFAULT_BLOCK_INDEX == 3
    np.testing.assert_allclose(mine, ref, rtol=1e-5, atol=1e-6)
