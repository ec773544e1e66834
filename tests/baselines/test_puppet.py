"""The puppet method: deterministic per seed; listeners move, speakers do not; blinks close the
eyes; each mouth opens with its own person's loudness (left track -> left face).

Inputs are synthetic (tests/baselines/conftest.py): two real faces and two tracks whose level is
known in closed form, so every expectation below is computed independently of the method.
"""

from __future__ import annotations

import numpy as np
import pytest

from interactive_eyes.baselines import METHODS
from interactive_eyes.baselines.puppet import FPS, person_signals, frame_levels_db
from interactive_eyes.media.video import probe, read_frames

cv2 = pytest.importorskip("cv2")


@pytest.fixture(scope="module")
def outputs(face_landmarker_task, synthetic_item, tmp_path_factory):
    """One puppet per parameter set; four short generations shared by the tests below. The faces
    come from face_landmarker.task's models (tests/conftest.py says where the file is found)."""
    out = tmp_path_factory.mktemp("puppet")
    moving = METHODS.get("puppet")()
    still = METHODS.get("puppet")(head_motion=0.0)
    files = {}
    for key, method, seed in (("a", moving, 0), ("b", moving, 0), ("c", moving, 1), ("still", still, 0)):
        info = method.generate(synthetic_item, out / f"{key}.mp4", seed=seed)
        files[key] = (out / f"{key}.mp4", info)
    return {"files": files, "faces": moving.faces(synthetic_item), "method": moving}


def _frames(path):
    return read_frames(path)[0]  # uint8; regions are converted to float where measured


def _box(frames, x0, y0, x1, y1):
    return frames[:, int(y0) : int(y1), int(x0) : int(x1)].astype(np.float32)


def test_output_format(outputs, design):
    path, info = outputs["files"]["a"]
    vi = probe(path)
    n = round(design.duration * FPS)
    assert (vi.width, vi.height, vi.fps, vi.n_frames) == (768, 384, 25.0, n)
    assert vi.has_audio and abs(vi.duration - design.duration) <= 1 / FPS
    assert info["frames"] == n
    assert [p["role"] for p in info["people"]] == ["left", "right"]
    # the people are bound left to right: the left face is in the left half
    assert outputs["faces"][0].box[2] < 384 < outputs["faces"][1].box[0]


def test_same_seed_same_frames_other_seed_differs(outputs):
    a, b, c = (_frames(outputs["files"][k][0]) for k in "abc")
    assert np.array_equal(a, b)
    assert np.abs(a.astype(np.int16) - c).mean() > 0.05  # other blink/nod times and phases


def _head_shift(frames, ref, box):
    """Translation (px) of an image region in each frame relative to the reference.

    OpenCV's ECC alignment (translation model, from zero): sub-pixel and unbiased on a region of
    any size. Phase correlation was used before; on this 45x36 px band it reports 0.5 px for the
    region against itself (the DFT size it pads to is odd) and, under OpenCV 4.11, a 20-32 px
    false peak for a still face; ECC: <= 0.03 px for still faces, r > 0.99 with the designed motion.
    """
    x0, y0, x1, y1 = (int(v) for v in box)
    g0 = ref[y0:y1, x0:x1].mean(axis=2).astype(np.float32)
    stop = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-5)
    out = []
    for f in frames:
        warp = np.eye(2, 3, dtype=np.float32)
        _, warp = cv2.findTransformECC(g0, f[y0:y1, x0:x1].mean(axis=2).astype(np.float32), warp,
                                       cv2.MOTION_TRANSLATION, stop, None, 5)
        out.append((float(warp[0, 2]), float(warp[1, 2])))
    return np.array(out)


def test_listeners_move_speakers_hold_still(outputs, synthetic_item, design):
    """Head motion happens in each person's listening window and matches the designed motion."""
    path, _ = outputs["files"]["a"]
    frames = _frames(path)
    from PIL import Image

    ref = np.asarray(Image.open(synthetic_item.reference_frame).convert("RGB"), dtype=np.float32)
    t = np.arange(len(frames)) / FPS
    for k, (role, (s, e, _)) in enumerate(design.turns.items()):
        g = outputs["faces"][k]
        fh = g.height
        # eyes-and-nose band: inside the moving head ellipse, above the mouth
        ex0 = min(x for x, _, w, _ in g.eyes) - 0.5 * max(w for *_, w, _ in g.eyes)
        ex1 = max(x for x, _, w, _ in g.eyes) + 0.5 * max(w for *_, w, _ in g.eyes)
        box = (ex0, g.box[1] + 0.15 * fh, ex1, g.mouth[0] - 0.1 * fh)
        shift = _head_shift(frames, ref, box)
        mag = np.hypot(shift[:, 0], shift[:, 1])
        levels = frame_levels_db(_track(synthetic_item, k), 16000, len(frames), FPS)
        sig = person_signals(levels, FPS, np.random.default_rng([0, k]), head_motion=1.0, blinks_per_minute=15.0)
        open_eyes = sig["blink"] == 0  # a blink changes the band's content, not its position
        speaking = (t > s + 0.5) & (t < e - 0.5) & open_eyes  # away from the 0.4 s fades at turn boundaries
        listening = ~((t > s - 0.5) & (t < e + 0.5)) & open_eyes
        assert speaking.sum() > 10 and listening.sum() > 10
        assert mag[speaking].max() < 0.3, (role, mag[speaking].max())
        assert mag[listening].max() > 1.0, (role, mag[listening].max())
        # the measured motion follows the designed one (rotation about the pivot + shift)
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        px, py = g.chin[0], g.chin[1] + 0.15 * fh
        th = np.deg2rad(sig["roll"])
        # cv2.getRotationMatrix2D: positive angle = counter-clockwise on screen (y down)
        pred_x = np.cos(th) * (cx - px) + np.sin(th) * (cy - py) + px - cx + sig["dx"] * fh
        pred_y = -np.sin(th) * (cx - px) + np.cos(th) * (cy - py) + py - cy + sig["dy"] * fh
        for measured, predicted in ((shift[:, 0], pred_x), (shift[:, 1], pred_y)):
            if np.std(predicted[listening]) > 0.2:
                r = np.corrcoef(measured[listening], predicted[listening])[0, 1]
                assert r > 0.8, (role, r)


def _track(item, k):
    from interactive_eyes.media.audio import load_audio

    return load_audio(item.people[k].audio, sample_rate=16000)


def test_blinks_close_the_eyes(outputs, synthetic_item):
    path, info = outputs["files"]["still"]
    frames = _frames(path)
    n = len(frames)
    for k in range(2):
        g = outputs["faces"][k]
        levels = frame_levels_db(_track(synthetic_item, k), 16000, n, FPS)
        blink = person_signals(levels, FPS, np.random.default_rng([0, k]), head_motion=0.0, blinks_per_minute=15.0)["blink"]
        assert info["people"][k]["blinks"] >= 1 and blink.max() > 0.9
        for ex, ey, ew, ah in g.eyes:
            eye = _box(frames, ex - ew / 2, ey - ah - 1, ex + ew / 2, ey + ah + 2)
            change = np.abs(eye - eye[blink == 0].mean(axis=0)).mean(axis=(1, 2, 3))
            assert change[blink > 0.9].min() > 4 * change[blink == 0].max(), (k, change[blink > 0.9], change[blink == 0].max())


def test_mouth_follows_own_loudness(outputs, design):
    """Mouth darkening correlates with this person's designed level, not with the other's."""
    path, _ = outputs["files"]["still"]
    frames = _frames(path)
    t = np.arange(len(frames)) / FPS
    for k, role in enumerate(design.turns):
        g = outputs["faces"][k]
        lip_y, mx0, mx1 = g.mouth
        mw = mx1 - mx0
        region = _box(frames, mx0 + 0.2 * mw, lip_y - 0.1 * mw, mx1 - 0.2 * mw, lip_y + 0.2 * mw)
        darkening = region[0].mean() - region.mean(axis=(1, 2, 3))  # frame 0 is silent for both
        opening = lambda r: np.clip((design.level_db(r, t) + 50) / 30, 0, 1)  # noqa: E731  documented mapping
        other = [r for r in design.turns if r != role][0]
        r_own = np.corrcoef(darkening, opening(role))[0, 1]
        r_other = np.corrcoef(darkening, opening(other))[0, 1]
        assert r_own > 0.85 and r_other < 0.1, (role, r_own, r_other)
        assert darkening.max() > 20  # a visibly open mouth (gray levels)


def test_check_reports_missing_faces(face_landmarker_task, tmp_path, synthetic_item):
    from dataclasses import replace

    from PIL import Image

    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((200, 300, 3), 128, np.uint8)).save(blank)
    reason = METHODS.get("puppet")().check(replace(synthetic_item, reference_frame=blank))
    assert reason == f"{blank}: found 0 face(s) with landmarks, the clip has 2 people"


def test_search_windows_cover_the_frame_at_its_short_side():
    from interactive_eyes.baselines.puppet_faces import search_windows

    assert search_windows(384, 768) == [(0, 0, 384), (0, 192, 384), (0, 384, 384)]
    assert search_windows(500, 500) == [(0, 0, 500)]
    assert search_windows(1000, 300) == [(0, 0, 300), (150, 0, 300), (300, 0, 300), (450, 0, 300), (600, 0, 300),
                                         (700, 0, 300)]  # the last one flush with the bottom edge
    for h, w in ((384, 768), (1000, 300), (480, 852), (1024, 1536)):
        covered = np.zeros((h, w), bool)
        for y0, x0, side in search_windows(h, w):
            assert side == min(h, w) and y0 + side <= h and x0 + side <= w
            covered[y0:y0 + side, x0:x0 + side] = True
        assert covered.all()


def test_wide_two_person_frame_gives_each_face_once(face_landmarker_task, synthetic_item):
    """Both faces of the 768x384 pair are found, once each, and match the known layout: the right
    face is the left one mirrored about the frame's centre line (x -> 768 - x)."""
    from PIL import Image

    from interactive_eyes.baselines.puppet_faces import find_meshes, locate_faces

    rgb = np.asarray(Image.open(synthetic_item.reference_frame).convert("RGB"))
    meshes = find_meshes(rgb)
    assert len(meshes) == 2  # the middle window sees both faces again; they are not kept twice
    left, right = locate_faces(rgb, 2)
    assert left.box[2] < 384 < right.box[0]
    mirrored = (768 - right.box[2], right.box[1], 768 - right.box[0], right.box[3])
    assert np.abs(np.subtract(left.box, mirrored)).max() < 0.05 * left.height, (left.box, right.box)
    assert right.source.startswith("mediapipe-tasks") and "sha256" in right.source
