"""Reading and strictly loading the original Wan2.1 encoder files (VAE, umT5, CLIP).

Shared by :mod:`.vae`, :mod:`.text_encoder` and :mod:`.image_encoder`:

- :func:`read_weights`: a flat ``{key: tensor}`` dict from a ``.pth`` (``torch.load(weights_only=True,
  mmap=True)``: tensors and plain containers only, no arbitrary unpickling, memory-mapped so the
  11 GB umT5 file is not read twice) or a ``.safetensors`` file. A missing file raises
  :class:`FileNotFoundError` naming the path.
- :func:`load_strict`: checks the converted key set and shapes against a module built on the
  ``meta`` device (one-line :class:`~.checkpoint.CheckpointError` naming the file and the first
  missing / unexpected / misshaped keys), loads with ``assign=True`` (no second copy of the
  weights) and re-creates the non-persistent buffers that a meta-device build leaves empty.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from .tensor_files import CheckpointError, load_tensor_file, tensor_dict

_SHOW = 5  # keys named in an error message


def read_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The flat state dict stored in ``path`` (the official Wan files are flat dicts of tensors)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: weights file not found")
    try:
        obj = load_tensor_file(p)
    except Exception as exc:  # unpickling, zip, safetensors header errors: one line naming the file
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{p}: cannot read weights ({first})") from exc
    return tensor_dict(obj, str(p), show=_SHOW)


def read_config(config: Mapping[str, Any] | str | os.PathLike | None) -> dict[str, Any]:
    """A config mapping, or a JSON file of one; keys starting with ``_`` are notes and dropped
    (as in the golden ``*.config.json`` files)."""
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        with open(config, encoding="utf-8") as fh:
            config = json.load(fh)
    return {k: v for k, v in config.items() if not k.startswith("_")}


def _first(items: list[str]) -> str:
    more = f" (+{len(items) - _SHOW} more)" if len(items) > _SHOW else ""
    return f"{items[:_SHOW]}{more}"


def check_keys(expected: Mapping[str, torch.Tensor], state_dict: Mapping[str, torch.Tensor],
               source: str, what: str) -> None:
    """Raise a one-line :class:`CheckpointError` unless ``state_dict`` has exactly the keys and
    shapes of ``expected``. Key names in the message are the converted (library) names."""
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    misshaped = [f"{k}: file {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
                 for k, v in expected.items() if k in state_dict and state_dict[k].shape != v.shape]
    parts = [f"{len(items)} {name} key(s) {_first(items)}"
             for name, items in (("missing", missing), ("unexpected", unexpected), ("misshaped", misshaped)) if items]
    if parts:
        raise CheckpointError(f"{source}: not a {what} checkpoint of this configuration: " + "; ".join(parts))


def load_strict(build: Callable[[], torch.nn.Module], state_dict: Mapping[str, torch.Tensor], source: str,
                what: str, *, buffers: Mapping[str, Callable[[torch.Tensor], torch.Tensor]] | None = None,
                ) -> torch.nn.Module:
    """Build the module on the meta device, check ``state_dict`` against it, load it with
    ``assign=True`` (the tensors, memory-mapped or not, become the parameters: no double
    allocation) and re-create each non-persistent buffer: ``buffers`` maps a buffer-name suffix to
    a function of the meta buffer returning its real value."""
    with torch.device("meta"):
        module = build()
    check_keys(module.state_dict(), state_dict, source, what)
    module.load_state_dict(dict(state_dict), strict=True, assign=True)
    for name, buf in list(module.named_buffers()):
        if not buf.is_meta:
            continue
        maker = next((f for suffix, f in (buffers or {}).items() if name.endswith(suffix)), None)
        if maker is None:
            raise CheckpointError(f"{source}: buffer {name!r} is neither stored nor re-creatable")
        owner_name, _, attr = name.rpartition(".")
        owner = module.get_submodule(owner_name) if owner_name else module
        owner._buffers[attr] = maker(buf)
    left = [n for n, t in list(module.named_parameters()) + list(module.named_buffers()) if t.is_meta]
    if left:  # defensive: every tensor must be real now
        raise CheckpointError(f"{source}: tensors not loaded {_first(left)}")
    return module


def finish(module: torch.nn.Module, device: torch.device | str, dtype: torch.dtype | None) -> torch.nn.Module:
    """Cast (``dtype`` None keeps the stored dtype), move, eval mode, gradients off."""
    if dtype is not None and any(t.dtype != dtype for t in module.parameters() if t.is_floating_point()):
        module.to(dtype=dtype)  # only when needed (diffusers warns on every cast)
    module.to(device=device)
    return module.eval().requires_grad_(False)
