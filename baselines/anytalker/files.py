"""Where the AnyTalker-1.3B files are found, and the list of what is missing before a run starts.

Layout (the official README's ``checkpoints/`` folder, one sub-folder per Hugging Face repository)::

    <root>/AnyTalker/1_3B-single-v1.pth, config_af2v_1_3B.json           zzz66/AnyTalker-1.3B
    <root>/Wan2.1-Fun-1.3B-Inp/Wan2.1_VAE.pth, models_t5_...pth,          alibaba-pai/Wan2.1-Fun-V1.1-1.3B-InP
                               models_clip_...pth, google/umt5-xxl/...
    <root>/wav2vec2-base-960h/config.json, preprocessor_config.json,      facebook/wav2vec2-base-960h
                              pytorch_model.bin (or model.safetensors)

``<root>`` is ``--param ckpt_dir=...`` when given (e.g. the official ``./checkpoints``), else the
ie-bench cache, ``<cache>/weights/anytalker-1.3b`` (filled by ``ie-bench weights fetch
anytalker-1.3b``). A single file can also be placed anywhere with ``IE_BENCH_WEIGHT_<NAME>``
(the registry's rule). The files are entries of ``interactive_eyes.weights.WEIGHTS``; their
SHA-256 is recorded in run.json (no published hash is known, so nothing is rejected).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

WEIGHT_SET = "anytalker-1.3b"
# registry names (interactive_eyes/weights.py) of each role
DIT = "anytalker_1_3b_dit"
DIT_CONFIG = "anytalker_1_3b_config"
VAE = "wan21_fun_inp_vae"
T5 = "wan21_fun_inp_umt5"
CLIP = "wan21_fun_inp_clip"
TOKENIZER = ("umt5_xxl_tokenizer", "umt5_xxl_tokenizer_config", "umt5_xxl_special_tokens", "umt5_xxl_spiece")
WAV2VEC = ("wav2vec2_base_960h_config", "wav2vec2_base_960h_preprocessor", "wav2vec2_base_960h_weights")
# A file that may stand in for another (same content, another serialisation): transformers reads
# either, and the tokenizer works from tokenizer.json alone or from spiece.model alone.
ALTERNATIVES = {
    "wav2vec2_base_960h_weights": ("model.safetensors",),
    "umt5_xxl_tokenizer": ("spiece.model",),
    "umt5_xxl_spiece": ("tokenizer.json",),
}
# Not needed to run (used by nothing, §3.2: the config JSON only cross-checks the weights; the
# special-tokens map is also written into tokenizer_config.json by current transformers).
OPTIONAL = {DIT_CONFIG, "umt5_xxl_special_tokens"}
# In the set (one fetch gives every file), but read only with vocal_separation=true: located then by
# vocals.locate_model, and neither required nor recorded here.
VOCALS = "kim_vocal_2"


class MissingFilesError(FileNotFoundError):
    """Files of the model are missing; ``str()`` is one line listing each expected path."""


@dataclass(frozen=True)
class AnyTalkerFiles:
    """The resolved paths of every file the 1.3B pipeline reads."""

    dit: Path
    dit_config: Path | None
    vae: Path
    t5: Path
    tokenizer_dir: Path
    clip: Path
    wav2vec_dir: Path
    paths: dict  # registry name -> path actually used (for run.json)

    def describe(self, hash_files: bool = True) -> dict:
        """name -> {path, sha256} for run.json (hashes are cached by (path, size, mtime))."""
        from interactive_eyes.weights import file_sha256

        return {n: {"path": str(p), "sha256": file_sha256(p) if hash_files else None}
                for n, p in sorted(self.paths.items())}


def default_root() -> Path:
    from interactive_eyes.weights import ANYTALKER_SET_DIR, weights_dir

    return weights_dir() / ANYTALKER_SET_DIR


def _expected(name: str, root: Path | None) -> Path:
    """Where ``name`` is looked for: $IE_BENCH_WEIGHT_<NAME>, else <root>/<folder>/<file>."""
    from interactive_eyes.weights import ANYTALKER_SET_DIR, get_spec, user_path

    supplied = user_path(name)
    if supplied is not None:
        return supplied
    spec = get_spec(name)
    if root is None:
        return spec.cache_path()
    rel = Path(spec.subdir).relative_to(ANYTALKER_SET_DIR)  # e.g. Wan2.1-Fun-1.3B-Inp/google/umt5-xxl
    return Path(root) / rel / spec.filename


def _present(name: str, path: Path) -> Path | None:
    if path.is_file():
        return path
    for alt in ALTERNATIVES.get(name, ()):
        if (path.parent / alt).is_file():
            return path.parent / alt
    return None


def locate(ckpt_dir: str | os.PathLike | None = None) -> AnyTalkerFiles:
    """Every file, or a :class:`MissingFilesError` naming all the missing ones and where each is
    expected (before any model is loaded, so a run stops before its first clip)."""
    from interactive_eyes.weights import WEIGHT_SETS

    root = Path(ckpt_dir).expanduser() if ckpt_dir else None
    found: dict[str, Path] = {}
    missing: list[str] = []
    for name in WEIGHT_SETS[WEIGHT_SET]:
        if name == VOCALS:
            continue
        expected = _expected(name, root)
        got = _present(name, expected)
        if got is not None:
            found[name] = got
        elif name not in OPTIONAL:
            missing.append(f"{expected} ({name})")
    if missing:
        where = f"ckpt_dir {root}" if root else f"the cache {default_root()}"
        hint = ("`ie-bench weights fetch anytalker-1.3b`" if root is None
                else "the official layout (AnyTalker/, Wan2.1-Fun-1.3B-Inp/, wav2vec2-base-960h/)")
        raise MissingFilesError(f"AnyTalker-1.3B: {len(missing)} file(s) missing in {where}: "
                                + "; ".join(missing) + f" — get them with {hint} or pass --param ckpt_dir=DIR")
    tok = found.get(TOKENIZER[0]) or found[TOKENIZER[3]]
    return AnyTalkerFiles(
        dit=found[DIT], dit_config=found.get(DIT_CONFIG), vae=found[VAE], t5=found[T5], tokenizer_dir=tok.parent,
        clip=found[CLIP], wav2vec_dir=found[WAV2VEC[0]].parent, paths=found,
    )
