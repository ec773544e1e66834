"""The weights registry: every model file ie-bench uses, where it comes from, and how it is checked.

One table (``WEIGHTS``) names each file with its URL(s), SHA-256 (or the git blob id where only
that is published), size, license and the metrics that use it. ``resolve(name)`` returns a local
path that has been checked against that table:

1. a user-supplied path (the ``path`` argument, else ``$IE_BENCH_WEIGHT_<NAME>``, e.g.
   ``IE_BENCH_WEIGHT_PT_INCEPTION=/models/pt_inception.pth``) — for clusters without internet;
2. else the cache, ``$IE_BENCH_HOME/weights/[<subdir>/]<filename>`` (default ``~/.cache/ie-bench``);
3. else a download (``fetch``) — unless offline (``offline=True`` or ``IE_BENCH_OFFLINE=1``), in
   which case ``WeightsMissingError`` says, on one line, the expected path, the URL and the
   ``ie-bench weights fetch <name>`` command.

Hashing a 300 MB file on every call would be wasteful, so a file's SHA-256 is remembered keyed by
its content identity: path, inode, size, mtime_ns and ctime_ns. Any write changes ctime (which no
user call can set back, unlike mtime), a replaced file has a new inode; either means hashing
again. A record made within ``RACY_NS`` of the file's last change is not trusted (git's "racily
clean" rule: a write in the same timestamp tick would leave every field equal).
``verify(..., rehash=True)`` / ``ie-bench weights verify --rehash`` ignore the cache.

A file no firm hash vouches for (unconfirmed pin or none) must at least be a well-formed file
of its format (``interactive_eyes.weights_structure``): a truncated ``.onnx`` is ``corrupt``
and rejected with a one-line error naming the path and the fix, not accepted with a warning.

**Honesty about pins.** ``confirmed=True`` means the SHA-256 is published by the authors or pinned
identically by several independent sources (see each entry's ``source``); a file that does not
match it is rejected. ``confirmed=False`` means only a weaker pin exists (one third-party record,
or just the torch-hub filename prefix): such a file is accepted with a warning when it matches
what is known (size, filename prefix), its actual SHA-256 is recorded in every result, and a full
mismatch is reported, never hidden. No hash in this table was invented: where none is known the
field is ``None``.

Third-party packages that download on their own (face-alignment, through torch hub) are pointed at
the same cache with ``torch_hub_cache()``, and the files they use are entries here
(``fan_2dfan4``, ``fan_s3fd``), so their hashes are recorded like every other file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from interactive_eyes.data.paths import cache_home
from interactive_eyes.weights_structure import structure_problem
from interactive_eyes.download import (
    DownloadError,
    Transport,
    download,
    git_blob_sha1,
    sha256_file,
)

log = logging.getLogger(__name__)

OFFLINE_ENV = "IE_BENCH_OFFLINE"
# Each URL but the last gets one retry (the next URL is the better retry); the last gets
# RETRIES. With download's 15 s timeouts and 30 s no-data budget, a stalled network costs
# 31 s per URL: 62 s for the two-URL entries (it was 2 x 4 x 60 s = 495 s).
RETRIES = 3
RETRIES_BEFORE_NEXT_URL = 1
BACKOFF = 1.0
PATH_ENV_PREFIX = "IE_BENCH_WEIGHT_"
HASH_CACHE_FILE = ".hashes.json"


@dataclass(frozen=True)
class WeightSpec:
    """One model file. ``sha256`` / ``git_blob`` / ``size`` are ``None`` where not known."""

    name: str
    filename: str
    urls: tuple[str, ...]
    sha256: str | None
    size: int | None
    license: str
    used_by: tuple[str, ...]
    source: str  # where the pins come from
    git_blob: str | None = None  # `git hash-object` id, where that is what is published
    subdir: str = ""  # folder under <cache>/weights/
    confirmed: bool = True  # see module docstring
    sha256_prefix: str | None = None  # torch-hub style prefix carried by the filename
    member: str | None = None  # the file is this member of a zip archive at ``urls``
    archive_sha256: str | None = None
    archive_size: int | None = None
    note: str = ""

    @property
    def env_var(self) -> str:
        return PATH_ENV_PREFIX + self.name.upper()

    @property
    def url(self) -> str:
        return self.urls[0]

    def cache_path(self) -> Path:
        base = weights_dir()
        return (base / self.subdir / self.filename) if self.subdir else base / self.filename


def _spec(**kw) -> WeightSpec:
    kw["urls"] = tuple(kw["urls"])
    kw["used_by"] = tuple(kw["used_by"])
    return WeightSpec(**kw)


_FAN = "https://www.adrianbulat.com/downloads/python-fan/"

WEIGHTS: dict[str, WeightSpec] = {
    s.name: s
    for s in [
        _spec(
            name="syncnet_v2",
            filename="syncnet_v2.model",
            urls=["http://www.robots.ox.ac.uk/~vgg/software/lipsync/data/syncnet_v2.model",
                  "https://huggingface.co/ByteDance/LatentSync-1.5/resolve/main/auxiliary/syncnet_v2.model"],
            sha256="961e8696f888fce4f3f3a6c3d5b3267cf5b343100b238e79b2659bff2c605442",
            size=54_573_114,
            license="MIT (joonson/syncnet_python)",
            used_by=["sync_c", "sync_d"],
            source="spec/metrics.md §1.1: prefix in the syncnet-python 0.2.3 README, full digest and size pinned "
                   "identically by several independent repositories",
        ),
        _spec(
            name="s3fd",
            filename="sfd_face.pth",
            urls=["https://www.robots.ox.ac.uk/~vgg/software/lipsync/data/sfd_face.pth",
                  "https://huggingface.co/ByteDance/LatentSync-1.5/resolve/main/auxiliary/sfd_face.pth"],
            sha256="d54a87c2b7543b64729c9a25eafd188da15fd3f6e02f0ecec76ae1b30d86c491",
            size=89_844_381,
            license="MIT (joonson/syncnet_python); S3FD model terms of its authors apply",
            used_by=["sync_c", "sync_d", "faces"],
            source="spec/metrics.md §1.1 (same provenance as syncnet_v2)",
        ),
        _spec(
            name="pt_inception",
            filename="pt_inception-2015-12-05-6726825d.pth",
            urls=["https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                  "pt_inception-2015-12-05-6726825d.pth"],
            sha256="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
            size=95_628_359,
            license="Apache-2.0 (pytorch-fid; TensorFlow inception-2015-12-05 weights)",
            used_by=["fid"],
            sha256_prefix="6726825d",
            source="spec/metrics.md §2.1 gives the URL and the torch-hub prefix 6726825d; the full digest and the "
                   "size 95,628,359 B are pinned identically by several independent repositories (the same bytes "
                   "are re-released by torch-fidelity as weights-inception-2015-12-05-6726825d.pth)",
        ),
        _spec(
            name="i3d_torchscript",
            filename="i3d_torchscript.pt",
            urls=["https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1",
                  "https://huggingface.co/ByteDance/LatentSync-1.5/resolve/main/auxiliary/i3d_torchscript.pt"],
            sha256="bec6519f66ea534e953026b4ae2c65553c17bf105611c746d904657e5860a5e2",
            git_blob="93daef59c7ae0e9e8f76225521407e60cbafa6aa",
            size=51_235_320,
            license="Apache-2.0 (DeepMind kinetics-i3d weights; TorchScript port by StyleGAN-V)",
            used_by=["fvd"],
            source="spec/metrics.md §3.2 (URL) and §3.3 (git blob id in JunyaoHu/common_metrics_on_video_quality); "
                   "SHA-256 and size pinned identically by several independent repositories, including a listing "
                   "of the HF ByteDance/LatentSync-1.5 copy",
            note="the SHA-256 is checked; the git blob id is kept as the second published identity "
                 "(`git hash-object i3d_torchscript.pt`)",
        ),
        _spec(
            name="arcface_w600k_r50",
            filename="w600k_r50.onnx",
            subdir="insightface/buffalo_l",
            urls=["https://github.com/deepinsight/insightface/releases/download/v0.7/buffalo_l.zip"],
            member="w600k_r50.onnx",
            sha256="c6cfaf46fb93ee95be5298a40ce1b906538d3c26e8145d3825f32526113f111f",
            size=174_383_856,
            confirmed=False,
            license="InsightFace model zoo: non-commercial research use only",
            used_by=["identity"],
            source="spec/metrics.md §4 (pack URL and member name). InsightFace publishes no checksum for buffalo_l.zip "
                   "or its members; the member's SHA-256 and size come from one third-party git-LFS pointer and are "
                   "not independently confirmed, so a mismatch warns instead of rejecting",
            note="the file is a member of the 326 MB buffalo_l.zip: fetch downloads the zip, extracts this member, "
                 "checks it and deletes the zip",
        ),
        _spec(
            name="fan_2dfan4",
            filename="2DFAN4-11f355bf06.pth.tar",
            subdir="torch_hub/checkpoints",
            urls=[_FAN + "2DFAN4-11f355bf06.pth.tar"],
            sha256="11f355bf0693120222f5955ce3f9dc8fb5763ebb30a47d7906e509490d32e4aa",
            size=None,
            confirmed=False,
            sha256_prefix="11f355bf06",
            license="BSD-3-Clause (1adrianb/face-alignment)",
            used_by=["landmarks:face_alignment"],
            source="spec/metrics.md §6.2 (face-alignment v1.5.0 URL; the filename carries the torch-hub SHA-256 "
                   "prefix 11f355bf06). The full digest comes from one third-party pin that agrees with the prefix; "
                   "size not known",
        ),
        _spec(
            name="fan_s3fd",
            filename="s3fd-619a316812.pth",
            subdir="torch_hub/checkpoints",
            urls=[_FAN + "s3fd-619a316812.pth"],
            sha256="619a31681264d3f7f7fc7a16a42cbbe8b23f31a256f75a366e5a1bcd59b33543",
            size=89_843_225,
            sha256_prefix="619a316812",
            license="BSD-3-Clause (1adrianb/face-alignment)",
            used_by=["landmarks:face_alignment"],
            source="spec/metrics.md §6.2 (URL, prefix 619a316812 in the filename); full digest and size pinned "
                   "identically by independent listings (SadTalker and LatentSync-1.5 checkpoint tables)",
        ),
        _spec(
            name="face_landmarker",
            filename="face_landmarker.task",
            urls=["https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/"
                  "face_landmarker.task"],
            sha256="64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
            size=3_758_596,
            license="Apache-2.0 (Google MediaPipe models)",
            used_by=["landmarks:mediapipe_tasks"],
            source="spec/metrics.md §6.3 (URL and SHA-256); size and digest pinned identically by several "
                   "independent repositories",
        ),
    ]
}


# ---------------------------------------------------------------------------------------------
# AnyTalker-1.3B generator files (baselines/anytalker). One folder per Hugging Face repository, laid
# out like the official README's `checkpoints/` folder, under <cache>/weights/anytalker-1.3b/. No
# SHA-256 of these files is known to the spec: every entry is unconfirmed (the digest actually used
# is recorded in run.json). Fetched as the set ``anytalker-1.3b`` (WEIGHT_SETS), not by a plain
# ``ie-bench weights fetch`` (about 8 GB).
_HF = "https://huggingface.co/{repo}/resolve/main/{path}"
_ANYTALKER_SOURCES = {
    "AnyTalker": ("zzz66/AnyTalker-1.3B", "Apache-2.0 (HKUST-C4G/AnyTalker weights)"),
    "Wan2.1-Fun-1.3B-Inp": ("alibaba-pai/Wan2.1-Fun-V1.1-1.3B-InP", "Apache-2.0 (Wan2.1 / Wan2.1-Fun)"),
    "wav2vec2-base-960h": ("facebook/wav2vec2-base-960h", "Apache-2.0 (facebook/wav2vec2-base-960h)"),
}
# name -> (local folder, path inside the Hugging Face repository)
_ANYTALKER_FILES = {
    "anytalker_1_3b_dit": ("AnyTalker", "1_3B-single-v1.pth"),
    "anytalker_1_3b_config": ("AnyTalker", "config_af2v_1_3B.json"),
    "wan21_fun_inp_vae": ("Wan2.1-Fun-1.3B-Inp", "Wan2.1_VAE.pth"),
    "wan21_fun_inp_umt5": ("Wan2.1-Fun-1.3B-Inp", "models_t5_umt5-xxl-enc-bf16.pth"),
    "wan21_fun_inp_clip": ("Wan2.1-Fun-1.3B-Inp", "models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth"),
    "umt5_xxl_tokenizer": ("Wan2.1-Fun-1.3B-Inp", "google/umt5-xxl/tokenizer.json"),
    "umt5_xxl_tokenizer_config": ("Wan2.1-Fun-1.3B-Inp", "google/umt5-xxl/tokenizer_config.json"),
    "umt5_xxl_special_tokens": ("Wan2.1-Fun-1.3B-Inp", "google/umt5-xxl/special_tokens_map.json"),
    "umt5_xxl_spiece": ("Wan2.1-Fun-1.3B-Inp", "google/umt5-xxl/spiece.model"),
    "wav2vec2_base_960h_config": ("wav2vec2-base-960h", "config.json"),
    "wav2vec2_base_960h_preprocessor": ("wav2vec2-base-960h", "preprocessor_config.json"),
    "wav2vec2_base_960h_weights": ("wav2vec2-base-960h", "pytorch_model.bin"),
}
ANYTALKER_SET_DIR = "anytalker-1.3b"
for _name, (_folder, _path) in _ANYTALKER_FILES.items():
    _repo, _license = _ANYTALKER_SOURCES[_folder]
    _sub = "/".join([ANYTALKER_SET_DIR, _folder, *_path.split("/")[:-1]])
    WEIGHTS[_name] = _spec(
        name=_name, filename=_path.split("/")[-1], urls=[_HF.format(repo=_repo, path=_path)], sha256=None,
        size=None, license=_license, used_by=["method:anytalker"], subdir=_sub, confirmed=False,
        source=f"Hugging Face {_repo} (repository and file names: spec/baselines.md §1a, anytalker-model.md §3.2); "
               "no published hash known: unconfirmed, the actual sha256 is recorded",
    )

# The vocal separator of the official AnyTalker pipeline (anytalker-model.md §7.1 step 2), read only
# with ``--param vocal_separation=true`` (baselines/anytalker/vocals.py). Its folder is the official
# ``checkpoints/vocal_separator/`` (spec/baselines.md §2.6 item 2), so it lives in the AnyTalker set's
# tree and a ``ckpt_dir`` in the official layout holds it too. It is a member of the set
# ``anytalker-1.3b``: one fetch gives every file the method can read, so an offline machine set up
# with it can turn the option on later (a small file next to the ~8 GB of the rest). The URL is
# the Ultimate Vocal Remover model release that the audio-separator package downloads it from; no
# hash is published there.
KIM_VOCAL_2 = "kim_vocal_2"
WEIGHTS[KIM_VOCAL_2] = _spec(
    name=KIM_VOCAL_2, filename="Kim_Vocal_2.onnx",
    urls=["https://github.com/TRvlvr/model_repo/releases/download/all_public_uvr_models/Kim_Vocal_2.onnx"],
    sha256=None, size=None, confirmed=False, subdir=f"{ANYTALKER_SET_DIR}/vocal_separator",
    license="not stated by the model's author (KimberleyJensen); distributed in Ultimate Vocal Remover's model "
            "repository TRvlvr/model_repo (UVR's code is MIT)",
    used_by=["method:anytalker"],
    source="file name and folder: spec/anytalker-model.md §3.2, §7.1 and spec/baselines.md §2.6; URL: the UVR "
           "release audio-separator downloads from; no published hash known: unconfirmed, the actual sha256 is "
           "recorded",
    note="MDX-Net vocal model (ONNX, input [batch, 4, 3072, 256]); used only with vocal_separation=true",
)

#: Named groups of entries: ``ie-bench weights fetch <set>`` fetches all of them. Members of a set
#: are left out of a plain ``ie-bench weights fetch`` (everything else), being large and needed
#: only by their method.
WEIGHT_SETS: dict[str, tuple[str, ...]] = {
    "anytalker-1.3b": (*_ANYTALKER_FILES, KIM_VOCAL_2),
}


def expand_sets(names) -> list[str]:
    """Weight names with every set name replaced by its members (order kept, no duplicates)."""
    out: list[str] = []
    for n in names:
        for m in WEIGHT_SETS.get(n, (n,)):
            if m not in out:
                out.append(m)
    return out


def default_names() -> list[str]:
    """The entries a plain ``weights fetch`` / ``list`` covers: everything not in a set."""
    in_sets = {m for members in WEIGHT_SETS.values() for m in members}
    return sorted(n for n in WEIGHTS if n not in in_sets)


class WeightsError(RuntimeError):
    """A weights problem. ``str(err)`` is one line."""

    def __init__(self, message: str):
        super().__init__(" ".join(message.split()))


class WeightsMissingError(WeightsError, FileNotFoundError):
    """The file is not available (offline, or a user path that does not exist)."""


class WeightsMismatchError(WeightsError):
    """The file exists but is not the one the registry describes."""


# ---------------------------------------------------------------------------------------------
# Locations and settings


def weights_dir() -> Path:
    return cache_home() / "weights"


def torch_hub_dir() -> Path:
    """The torch hub root used for packages that download through torch hub (face-alignment).

    Files land in ``<this>/checkpoints/`` — the ``torch_hub/checkpoints`` subdir of the entries
    ``fan_2dfan4`` and ``fan_s3fd`` — so they are listed, fetched and verified like the others.
    """
    return weights_dir() / "torch_hub"


@contextlib.contextmanager
def torch_hub_cache() -> Iterator[Path]:
    """Point torch hub (and so face-alignment's ``load_file_from_url``) at ie-bench's cache for
    the duration of the block; the previous hub directory is restored afterwards."""
    import torch.hub

    previous = torch.hub.get_dir()
    torch_hub_dir().mkdir(parents=True, exist_ok=True)
    torch.hub.set_dir(str(torch_hub_dir()))
    try:
        yield torch_hub_dir()
    finally:
        torch.hub.set_dir(previous)


def is_offline(offline: bool | None = None) -> bool:
    if offline is not None:
        return bool(offline)
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def get_spec(name: str) -> WeightSpec:
    try:
        return WEIGHTS[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, list(WEIGHTS), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise WeightsError(f"unknown weights name '{name}'{hint}; known: {', '.join(sorted(WEIGHTS))}") from None


def fetch_command(name: str) -> str:
    return f"ie-bench weights fetch {name}"


# ---------------------------------------------------------------------------------------------
# Hashing with a cache keyed by content identity (path, inode, size, mtime_ns, ctime_ns)

_hash_lock = threading.Lock()
_hash_memo: dict[tuple[str, int, int, int, int], str] = {}
# File-system timestamps advance in ticks (a few ms on Linux, 1 s on some file systems); a record
# hashed less than this after the file's last change could miss a second write in the same tick.
RACY_NS = 1_000_000_000


def _now_ns() -> int:
    return time.time_ns()


def _hash_cache_path() -> Path:
    return weights_dir() / HASH_CACHE_FILE


def _load_hash_cache() -> dict:
    try:
        return json.loads(_hash_cache_path().read_text())
    except (OSError, ValueError):
        return {}


def _save_hash_cache(entries: dict) -> None:
    target = _hash_cache_path()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".hashes.", suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump(entries, fh, indent=1, sort_keys=True)
        os.replace(tmp, target)
    except OSError as exc:  # a read-only cache still works, it just hashes again next time
        log.debug("could not write %s: %s", target, exc)


def _identity(st: os.stat_result) -> dict:
    return {"ino": st.st_ino, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns}


def file_sha256(path: str | os.PathLike, *, rehash: bool = False) -> str:
    """SHA-256 of a file, remembered (in memory and in ``<cache>/weights/.hashes.json``) keyed by
    its resolved path and content identity (see the module docstring), so a model file is hashed
    once, not on every run. ``rehash``: ignore what is remembered (and remember the new digest)."""
    p = Path(path).resolve()
    st = p.stat()
    ident = _identity(st)
    key = (str(p), *ident.values())
    if not rehash:
        with _hash_lock:
            if key in _hash_memo:
                return _hash_memo[key]
            rec = _load_hash_cache().get(str(p))
            if rec and all(rec.get(k) == v for k, v in ident.items()) and \
                    rec.get("hashed_at_ns", 0) - max(st.st_mtime_ns, st.st_ctime_ns) >= RACY_NS:
                _hash_memo[key] = rec["sha256"]
                return rec["sha256"]
    hashed_at = _now_ns()  # taken before reading: a write during the hashing is never covered
    digest = sha256_file(p)
    with _hash_lock:
        if p.stat().st_ctime_ns != st.st_ctime_ns:  # changed while being hashed: remember nothing
            return digest
        _hash_memo[key] = digest
        entries = _load_hash_cache()
        entries[str(p)] = {**ident, "hashed_at_ns": hashed_at, "sha256": digest}
        _save_hash_cache(entries)
    return digest


# ---------------------------------------------------------------------------------------------
# Checking one file against its entry


@dataclass
class WeightStatus:
    """What ``verify`` / ``status`` found for one entry."""

    name: str
    path: Path
    # "verified" | "accepted" (unconfirmed pin, matches what is known) | "mismatch" | "missing"
    # | "corrupt" (no firm hash vouches for it and it is not a well-formed file of its format)
    state: str
    sha256: str | None = None
    detail: str = ""
    user_supplied: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.state in ("verified", "accepted")


def check_file(spec: WeightSpec, path: str | os.PathLike, *, user_supplied: bool = False,
               rehash: bool = False) -> WeightStatus:
    """Compare one file with its registry entry (size, SHA-256, torch-hub prefix, git blob); a
    file that no firm hash vouches for is also checked for its format's structure."""
    p = Path(path)
    if not p.is_file():
        return WeightStatus(spec.name, p, "missing", detail="file not found", user_supplied=user_supplied)
    size = p.stat().st_size
    problems: list[str] = []
    if spec.size is not None and size != spec.size:
        problems.append(f"size {size} bytes, expected {spec.size}")
    digest = file_sha256(p, rehash=rehash)
    if spec.sha256 is not None and digest != spec.sha256:
        problems.append(f"sha256 {digest}, expected {spec.sha256}")
    if spec.sha256_prefix is not None and not digest.startswith(spec.sha256_prefix):
        problems.append(f"sha256 {digest} does not start with the filename's prefix {spec.sha256_prefix}")
    if spec.sha256 is None and spec.git_blob is not None:
        blob = git_blob_sha1(p)
        if blob != spec.git_blob:
            problems.append(f"git blob id {blob}, expected {spec.git_blob}")
    if not spec.confirmed:  # a confirmed hash decides on its own (match proves the bytes, mismatch rejects)
        broken = structure_problem(p)
        if broken is not None:
            return WeightStatus(spec.name, p, "corrupt", digest, "; ".join([broken, *problems]), user_supplied)
    if problems:
        return WeightStatus(spec.name, p, "mismatch", digest, "; ".join(problems), user_supplied)
    if spec.sha256 is None and spec.git_blob is None and spec.sha256_prefix is None:
        return WeightStatus(spec.name, p, "accepted", digest, "no published hash: recorded only", user_supplied)
    return WeightStatus(spec.name, p, "verified" if spec.confirmed else "accepted", digest,
                        "" if spec.confirmed else "matches an unconfirmed pin", user_supplied)


def _mismatch_is_fatal(spec: WeightSpec, status: WeightStatus) -> bool:
    """Confirmed pins reject; unconfirmed pins reject only what contradicts something certain
    (the filename's own hash prefix) or a file that cannot even be parsed, otherwise they warn."""
    if spec.confirmed or status.state == "corrupt":
        return True
    return spec.sha256_prefix is not None and not (status.sha256 or "").startswith(spec.sha256_prefix)


# ---------------------------------------------------------------------------------------------
# Public API


def user_path(name: str, path: str | os.PathLike | None = None) -> Path | None:
    """The user-supplied location for ``name`` (argument, else ``$IE_BENCH_WEIGHT_<NAME>``)."""
    spec = get_spec(name)
    chosen = path if path is not None else os.environ.get(spec.env_var) or None
    return Path(chosen).expanduser() if chosen else None


def resolve(name: str, *, offline: bool | None = None, path: str | os.PathLike | None = None,
            transport: Transport | None = None, progress: bool = True) -> Path:
    """A local, checked copy of weight ``name`` (see the module docstring for the search order)."""
    spec = get_spec(name)
    supplied = user_path(name, path)
    if supplied is not None:
        if not supplied.is_file():
            origin = "path given" if path is not None else f"${spec.env_var}"
            raise WeightsMissingError(f"{supplied}: weights file '{name}' not found ({origin}); "
                                      f"download it from {spec.url} or run `{fetch_command(name)}`")
        return _accept(spec, check_file(spec, supplied, user_supplied=True))

    target = spec.cache_path()
    if target.is_file():
        status = check_file(spec, target)
        if status.ok or not _mismatch_is_fatal(spec, status):
            return _accept(spec, status)
        if is_offline(offline):
            raise WeightsMismatchError(f"{target}: cached '{name}' does not match the registry ({status.detail}); "
                                       f"offline, so it cannot be replaced: run `{fetch_command(name)} --force` "
                                       f"with network access")
        log.warning("%s: cached file does not match (%s); downloading it again", target, status.detail)
        return fetch(name, transport=transport, progress=progress, force=True)

    if is_offline(offline):
        raise WeightsMissingError(f"{target}: weights '{name}' missing and offline mode is on; "
                                  f"download {spec.url} there, set ${spec.env_var}, or run `{fetch_command(name)}`")
    return fetch(name, transport=transport, progress=progress)


def _accept(spec: WeightSpec, status: WeightStatus) -> Path:
    if status.state == "corrupt":
        where = f"point ${spec.env_var} at a good copy" if status.user_supplied else \
            f"delete it and run `{fetch_command(spec.name)} --force`"
        raise WeightsMismatchError(f"{status.path}: '{spec.name}' is unusable ({status.detail}); {where}")
    if status.state == "mismatch":
        if _mismatch_is_fatal(spec, status):
            raise WeightsMismatchError(f"{status.path}: not the '{spec.name}' weights ({status.detail}); "
                                       f"get the right file from {spec.url} or run `{fetch_command(spec.name)}`")
        log.warning("%s: '%s' differs from an unconfirmed pin (%s); using it, its sha256 is recorded",
                    status.path, spec.name, status.detail)
    elif status.state == "accepted" and status.detail:
        log.info("%s: '%s' %s (sha256 %s)", status.path, spec.name, status.detail, status.sha256)
    return status.path


def fetch(name: str, transport: Transport | None = None, progress: bool = True, *, force: bool = False) -> Path:
    """Download weight ``name`` into the cache (verified, atomic); returns its path.

    Tries each URL of the entry in turn. A file already in the cache that passes its check is
    not downloaded again unless ``force``.
    """
    spec = get_spec(name)
    target = spec.cache_path()
    if target.is_file() and not force:
        status = check_file(spec, target)
        if status.ok:
            return target
    errors: list[str] = []
    for i, url in enumerate(spec.urls):
        retries = RETRIES if i == len(spec.urls) - 1 else RETRIES_BEFORE_NEXT_URL
        try:
            if spec.member is None:
                _download_plain(spec, url, target, transport, progress, retries)
            else:
                _download_member(spec, url, target, transport, progress, retries)
            return target
        except DownloadError as exc:
            errors.append(str(exc))
            log.warning("%s", exc)
    raise WeightsError(f"could not fetch '{name}': " + " | ".join(errors))


def _download_plain(spec: WeightSpec, url: str, target: Path, transport, progress, retries: int = RETRIES) -> None:
    # Confirmed pins are enforced by download() itself (the .part is deleted on mismatch).
    # Unconfirmed ones are checked after the file is complete, with the softer rule.
    sha = spec.sha256 if spec.confirmed else None
    size = spec.size if spec.confirmed else None
    blob = spec.git_blob if (spec.confirmed and spec.sha256 is None) else None
    if target.is_file():
        target.unlink()  # here only when it failed its check (or force): never resume onto a bad file
    download(url, target, sha256=sha, size=size, git_blob=blob, transport=transport, progress=progress,
             retries=retries, backoff=BACKOFF)
    status = check_file(spec, target)
    if status.state in ("mismatch", "corrupt") and _mismatch_is_fatal(spec, status):
        target.unlink(missing_ok=True)
        raise DownloadError(url, target, f"downloaded file rejected: {status.detail}; it was deleted")
    _accept(spec, status)


def _download_member(spec: WeightSpec, url: str, target: Path, transport, progress, retries: int = RETRIES) -> None:
    archive = target.parent / (Path(url.split("?")[0]).name or f"{spec.name}.zip")
    download(url, archive, sha256=spec.archive_sha256, size=spec.archive_size, transport=transport,
             progress=progress, retries=retries, backoff=BACKOFF)
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.namelist() if m == spec.member or m.endswith("/" + spec.member)]
            if not members:
                raise DownloadError(url, target, f"archive has no member {spec.member}")
            info = zf.getinfo(members[0])
            if spec.size is not None and info.file_size != spec.size:
                # size is known before extracting: refuse early when the pin is firm
                msg = f"member {members[0]} is {info.file_size} bytes, expected {spec.size}"
                if spec.confirmed:
                    raise DownloadError(url, target, msg)
                log.warning("%s: %s (unconfirmed pin)", archive, msg)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
            try:
                with os.fdopen(fd, "wb") as out, zf.open(info) as src:
                    shutil.copyfileobj(src, out, 1 << 20)
                status = check_file(spec, tmp)
                if status.state in ("mismatch", "corrupt") and _mismatch_is_fatal(spec, status):
                    raise DownloadError(url, target, f"extracted member rejected: {status.detail}")
                os.replace(tmp, target)
            finally:
                Path(tmp).unlink(missing_ok=True)
    except zipfile.BadZipFile as exc:
        raise DownloadError(url, archive, f"not a zip archive ({exc})") from None
    finally:
        archive.unlink(missing_ok=True)  # the member is what is kept; the archive is 326 MB
    _accept(spec, check_file(spec, target))


def verify(name: str, *, path: str | os.PathLike | None = None, rehash: bool = False) -> WeightStatus:
    """Check the file ``resolve`` would use for ``name`` (never downloads); ``rehash``: hash it
    again even if the hash cache has a record for it."""
    spec = get_spec(name)
    supplied = user_path(name, path)
    if supplied is not None:
        return check_file(spec, supplied, user_supplied=True, rehash=rehash)
    return check_file(spec, spec.cache_path(), rehash=rehash)


def status(names: list[str] | None = None) -> list[WeightStatus]:
    """``verify`` for every entry (or the given names), for ``ie-bench weights list``."""
    return [verify(n) for n in (names or sorted(WEIGHTS))]


def describe(name: str) -> dict:
    """The entry as JSON-safe data (for results provenance and ``weights list --json``)."""
    spec = get_spec(name)
    return {
        "name": spec.name, "filename": spec.filename, "urls": list(spec.urls), "sha256": spec.sha256,
        "git_blob": spec.git_blob, "size": spec.size, "license": spec.license, "used_by": list(spec.used_by),
        "confirmed": spec.confirmed, "member": spec.member, "source": spec.source, "note": spec.note,
        "cache_path": str(spec.cache_path()), "env_var": spec.env_var,
    }
