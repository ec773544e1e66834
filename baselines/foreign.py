"""The base class of every method that runs a foreign repository (spec/baselines.md §5.3-5.5).

A ``ForeignMethod`` subclass only translates: ``prepare_job(item, job, seed)`` writes the method's own
input files into ``job.inputs`` and returns an ``Invocation`` (argv, environment, where the
output appears, how many lead-in frames to drop). Everything else happens once, here:

    check -> prepare_job -> runner.run_job (subprocess, own env, timeout, logs, DONE) -> collect
          -> normalise.normalise (lead-in, frame count, mix, geometry) -> <clip_id>.mp4

The job folder of a clip is ``<out>/jobs/<clip_id>/`` (``in/``, ``out/`` with the raw file the
method wrote, never modified, ``work/``, ``tmp/``, ``stdout.txt``, ``stderr.txt``, ``DONE``,
``geometry.json``).

Configuration (``method_config``): ``repo`` (the checkout at ``capabilities.commit``), ``python``
(the interpreter of the method's own environment) and ``weights`` (a folder laid out as the
adapter's ``WEIGHT_FILES`` say) are parameters like any other, filled from methods.toml and
``--param``; ``missing()`` lists what is not set or not there.
"""

from __future__ import annotations

import glob as _glob
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

from interactive_eyes.baselines.base import Item, Method

TRACK_RATE = 16000  # every method here reads 16 kHz mono speech (wav2vec2 / Whisper front ends)


@dataclass
class Invocation:
    """What ``prepare_job`` returns: the command and where its output will be."""

    argv: list[str]
    output: str  # a glob relative to the job folder, matching exactly one file
    env: dict[str, str] = field(default_factory=dict)
    lead_in_frames: int = 0
    cwd: Path | None = None  # default: the job's symlinked copy of the checkout
    collect: Callable[[Path], Path] | None = None  # instead of `output`, for outputs a glob can't pick
    facts: dict[str, Any] = field(default_factory=dict)  # recorded in run.json (e.g. chosen segments)


class ForeignMethod(Method):
    """A method run as a subprocess from its own checkout and environment."""

    CONFIG_KEYS: ClassVar[tuple[str, ...]] = ("repo", "python", "weights")
    ENTRY: ClassVar[str] = ""  # the entry point, relative to the checkout (checked by missing())
    REPO_FILES: ClassVar[tuple[str, ...]] = ()  # pre-staged files the code reads relative to its checkout
    WEIGHT_FILES: ClassVar[tuple[str, ...]] = ()  # relative to `weights`, must exist
    GEOMETRY: ClassVar[str] = "resize"  # resize | stretch | cover_crop | box_crop (geometry.py)
    LOAD_S: ClassVar[float] = 600.0  # model-load allowance (spec §5.5: 2-10 min for 14B models)
    FACTOR: ClassVar[float] = 600.0  # seconds of wall time per second of clip, before calibration
    DEFAULT_PARAMS: ClassVar[dict[str, Any]] = {
        "repo": None, "python": None, "weights": None,
        "gpu": None,  # CUDA_VISIBLE_DEVICES for the job (Sonic and Hunyuan hard-code GPU 0)
        "load_timeout_s": None, "timeout_factor": None,  # None: the adapter's LOAD_S / FACTOR
        "crf": 18,
        "retries": 1,  # a failed (not timed-out) job is run again this many times (spec §5.5: cap at 1-2)
    }

    # ---- configuration
    def missing(self) -> list[str]:
        """What stops this method from running here: ``"key: why"`` per problem, [] when ready."""
        p = self._params
        out = [f"{k}: not set" for k in self.CONFIG_KEYS if not p.get(k)]
        if p.get("repo"):
            repo = Path(p["repo"]).expanduser()
            if not repo.is_dir():
                out.append(f"repo: {repo} is not a folder")
            elif self.ENTRY and not (repo / self.ENTRY).exists():
                out.append(f"repo: {repo / self.ENTRY} not found (checkout at {self.capabilities.commit}?)")
            else:  # files the code would otherwise download at run time (spec §5.5 "pre-stage")
                out += [f"repo: {repo / f} missing (pre-stage it)" for f in self.REPO_FILES if not (repo / f).exists()]
        if p.get("python") and not os.access(Path(p["python"]).expanduser(), os.X_OK):
            out.append(f"python: {p['python']} is not an executable")
        if p.get("weights"):
            w = Path(p["weights"]).expanduser()
            if not w.is_dir():
                out.append(f"weights: {w} is not a folder")
            else:
                out += [f"weights: {w / f} missing" for f in self.WEIGHT_FILES if not (w / f).exists()]
        return out

    def fps(self) -> float:
        """The rate the method writes (a parameter can change it, e.g. LongCat v1.0 vs v1.5)."""
        return float(self.capabilities.native_fps)

    def path(self, key: str) -> Path:
        return Path(self._params[key]).expanduser().resolve()

    def weight(self, rel: str) -> str:
        return str(self.path("weights") / rel)

    def python(self) -> str:
        # not resolved: a venv's bin/python is a symlink whose target would lose the venv
        return str(Path(self._params["python"]).expanduser().absolute())

    def entry(self) -> str:
        return str(self.path("repo") / self.ENTRY)

    # ---- to implement
    def prepare_job(self, item: Item, job, seed: int) -> Invocation:
        raise NotImplementedError(f"{type(self).__name__}.prepare_job")

    def geometry_fn(self, item: Item) -> Callable:
        """The analytic reference -> output map for ``item``, as ``fn(ref_size, out_size)``."""
        from interactive_eyes.baselines import geometry as g

        if self.GEOMETRY == "cover_crop":
            return g.cover_crop
        if self.GEOMETRY in ("resize", "stretch"):
            return lambda r, o: g.resize(r, o, self.GEOMETRY)
        raise NotImplementedError(f"{type(self).__name__}.geometry_fn for {self.GEOMETRY!r}")

    # ---- the pipeline
    def timeout_s(self, item: Item) -> float:
        from interactive_eyes.baselines.runner import timeout_for

        p = self._params
        load = p["load_timeout_s"] if p["load_timeout_s"] is not None else self.LOAD_S
        factor = p["timeout_factor"] if p["timeout_factor"] is not None else self.FACTOR
        return timeout_for(item.duration, load, factor)

    def _run_with_retries(self, job, inv: Invocation, run_job) -> dict:
        """Run the job; a failure other than a timeout is retried up to ``retries`` times (each
        attempt starts from an emptied work/out/tmp). The record says how many attempts it took."""
        from interactive_eyes.baselines.runner import JobFailed

        attempts = 1 + max(0, int(self._params["retries"]))
        for attempt in range(1, attempts + 1):
            try:
                return {**run_job(job, collect=_collector(inv)), "attempts": attempt}
            except JobFailed as exc:
                exc.details["attempts"] = attempt
                if exc.details.get("timed_out") or attempt == attempts:
                    raise

    def generate(self, item: Item, out_path: Path, *, seed: int, job_dir: Path | None = None) -> dict[str, Any]:
        from interactive_eyes.baselines.base import load_reference_frame, load_tracks, mix_tracks
        from interactive_eyes.baselines.normalise import normalise
        from interactive_eyes.baselines.runner import Job, run_job

        missing = self.missing()
        if missing:
            raise RuntimeError(f"{self.name} is not configured: {'; '.join(missing)}")
        out_path = Path(out_path)
        job_dir = Path(job_dir) if job_dir is not None else out_path.parent / "jobs" / item.clip_id
        job = Job(argv=[], job_dir=job_dir, repo=self.path("repo") if self._params.get("repo") else None)
        job.inputs.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        inv = self.prepare_job(item, job, int(seed))
        job.argv, job.env, job.cwd, job.timeout_s = inv.argv, dict(inv.env), inv.cwd, self.timeout_s(item)
        if self._params.get("gpu") is not None:
            job.env.setdefault("CUDA_VISIBLE_DEVICES", str(self._params["gpu"]))
        ran = self._run_with_retries(job, inv, run_job)
        t1 = time.perf_counter()
        tracks, rate = load_tracks(item)
        mix, clipped = mix_tracks(tracks)
        ref = load_reference_frame(item.reference_frame) if item.reference_frame is not None else None
        facts = normalise(ran["output"], out_path, fps=self.fps(), duration=item.duration, mix=mix,
                          audio_rate=rate, lead_in_frames=inv.lead_in_frames, reference=ref,
                          geometry_fn=self.geometry_fn(item), geometry_path=job_dir / "geometry.json",
                          crf=int(self._params["crf"]))
        return {
            **facts,
            "audio_rate": rate,
            "mix_clipped_samples": clipped,
            "job": {k: ran[k] for k in ("argv", "env", "cwd", "timeout_s", "returncode", "seconds", "reused", "sha256",
                                         "gpu_peak_mib", "gpus", "attempts")
                    if k in ran},
            "job_dir": str(job_dir),
            "prepared": inv.facts,
            "seconds_method": round(t1 - t0, 3),
            "seconds_normalise": round(time.perf_counter() - t1, 3),
        }


def _collector(inv: Invocation):
    return lambda j: inv.collect(j.job_dir) if inv.collect else collect_one(j.job_dir, inv.output)


def collect_one(job_dir: Path, pattern: str) -> Path:
    """The single file matching ``pattern`` under the job folder (spec §5.3 step 4: never trust
    timestamped names, find the output by glob inside a folder unique to the job)."""
    hits = sorted(Path(p) for p in _glob.glob(str(job_dir / pattern), recursive=True) if Path(p).is_file())
    if not hits:
        raise FileNotFoundError(f"{job_dir / pattern}: the method exited 0 but wrote no output")
    if len(hits) > 1:
        raise FileNotFoundError(f"{job_dir / pattern}: {len(hits)} candidate outputs ({hits[0].name}, {hits[1].name}, ...)")
    return hits[0]


# ---- input translation shared by the adapters


def write_tracks(item: Item, folder: Path, *, min_duration: float = 0.0, lead_silence: float = 0.0,
                 names: list[str] | None = None) -> list[Path]:
    """Each person's track as 16 kHz mono 16-bit WAV, all the same length.

    Length: ``max(T, min_duration)`` (trailing silence for methods with a minimum, trimmed off
    again by normalisation) plus ``lead_silence`` seconds of silence prepended (methods whose
    frame 0 sits before audio t = 0).
    """
    import numpy as np

    from interactive_eyes.media.audio import load_audio, write_wav

    n = int(round(max(item.duration, min_duration) * TRACK_RATE))
    lead = int(round(lead_silence * TRACK_RATE))
    paths = []
    for i, person in enumerate(item.people):
        x = load_audio(person.audio, sample_rate=TRACK_RATE)[:n]
        y = np.zeros(lead + n, dtype=np.float32)
        y[lead: lead + x.size] = x
        name = names[i] if names else f"person{i + 1}.wav"
        paths.append(Path(write_wav(folder / name, y, TRACK_RATE)))
    return paths


def write_mix(item: Item, folder: Path, name: str = "mix.wav", *, min_duration: float = 0.0) -> Path:
    """The benchmark mix (sum of the tracks, limited to [-1, 1]) as 16 kHz mono WAV."""
    import numpy as np

    from interactive_eyes.baselines.base import mix_tracks
    from interactive_eyes.media.audio import load_audio, write_wav

    n = int(round(max(item.duration, min_duration) * TRACK_RATE))
    tracks = np.zeros((item.n_people, n, 1), dtype=np.float32)
    for i, p in enumerate(item.people):
        x = load_audio(p.audio, sample_rate=TRACK_RATE)[:n]
        tracks[i, : x.size, 0] = x
    mix, _ = mix_tracks(tracks)
    return Path(write_wav(folder / name, mix[:, 0], TRACK_RATE))


def write_reference(item: Item, folder: Path, name: str | None = None, *, rgb=None) -> Path:
    """The reference frame (or ``rgb``) as PNG named after the clip: a name unique per item and
    without dots (AnyTalker and AniPortrait cut names at the first dot, spec §5.1)."""
    from PIL import Image

    from interactive_eyes.baselines.base import load_reference_frame

    rgb = load_reference_frame(item.reference_frame) if rgb is None else rgb
    p = folder / (name or f"{item.clip_id.replace('.', '_')}.png")
    Image.fromarray(rgb).save(p)
    return p


def single_person_inputs(item: Item, folder: Path, *, rgb=None) -> tuple[Path, Path]:
    """A one-person method's two inputs in ``folder``: the reference frame as PNG (``rgb`` instead
    when given, e.g. the method's own crop) and the person's track as WAV."""
    ref = write_reference(item, folder, rgb=rgb)
    (wav,) = write_tracks(item, folder)
    return ref, wav


def face_boxes(item: Item) -> list[tuple[float, float, float, float]]:
    """One face box (x1, y1, x2, y2, reference pixels) per person, left to right.

    The item's own boxes when it has them; otherwise the face tracker's whole-frame pass (MediaPipe) on the reference frame,
    the N largest faces sorted by box centre x (the AnyTalker rule, spec §2.4). Raises
    ``ValueError`` naming the frame when fewer faces than people are found.
    """
    if all(p.face_box is not None for p in item.people):
        return [tuple(map(float, p.face_box)) for p in item.people]
    from interactive_eyes.baselines.base import load_reference_frame
    from interactive_eyes.faces.track import face_locator

    rgb = load_reference_frame(item.reference_frame)
    loc = face_locator(item.n_people + 2)
    try:
        meshes = loc.locate(rgb)
    finally:
        loc.close()
    boxes = [(float(m[:, 0].min()), float(m[:, 1].min()), float(m[:, 0].max()), float(m[:, 1].max())) for m in meshes]
    if len(boxes) < item.n_people:
        raise ValueError(f"{item.reference_frame}: {len(boxes)} faces found for {item.n_people} people")
    boxes = sorted(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]), reverse=True)[: item.n_people]
    return sorted(boxes, key=lambda b: 0.5 * (b[0] + b[2]))


def upper_body_trbl(face, size) -> list[int]:
    """A person's region for bbox-bound methods, as [top, left, bottom, right] in pixels.

    MultiTalk's example boxes are large upper-body regions, not tight face boxes (spec §3.1):
    one face width either side of the face, half a face height above it, down to the bottom
    of the image. The order [top, left, bottom, right] is what the code indexes (rows a..c,
    columns b..d), confirmed by the repo's examples.
    """
    x1, y1, x2, y2 = face
    w, h = size
    fw, fh = x2 - x1, y2 - y1
    left, right = max(0, int(round(x1 - fw))), min(w, int(round(x2 + fw)))
    top, bottom = max(0, int(round(y1 - 0.5 * fh))), h
    return [top, left, bottom, right]


def centre_crop(rgb, aspect: float):
    """The largest centred region of ``rgb`` with width/height = ``aspect`` (for methods that
    stretch whatever they get: pre-cropping keeps faces undistorted; the overall map is then
    ``geometry.cover_crop``)."""
    h, w = rgb.shape[:2]
    if w / h > aspect:
        cw = int(round(h * aspect))
        x = (w - cw) // 2
        return rgb[:, x: x + cw]
    ch = int(round(w / aspect))
    y = (h - ch) // 2
    return rgb[y: y + ch]


def write_prompt_list(path: Path, rows: list[tuple[str, Path, Path]]) -> Path:
    """Hallo3 / OmniAvatar batch file: one ``prompt@@image@@audio`` line per item (no '@@' or
    newlines inside the prompt, or the line splits wrongly)."""
    lines = []
    for prompt, image, audio in rows:
        clean = " ".join(prompt.replace("@@", " ").split())
        lines.append(f"{clean}@@{image}@@{audio}")
    path.write_text("\n".join(lines) + "\n")
    return path


def frames_4n1(n: int, extra: int = 0) -> int:
    """The smallest 4k + 1 + extra >= n (Wan-family VAEs take 4k + 1 frames)."""
    k = max(0, -(-(n - 1 - extra) // 4))
    return 4 * k + 1 + extra
