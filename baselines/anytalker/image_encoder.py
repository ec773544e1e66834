"""The CLIP ViT-H/14 image encoder from the original
``models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth``, run by transformers'
``CLIPVisionModelWithProjection`` with the Wan preprocessing.

Spec: ``shared/spec/wan-encoders.md`` §4. API (used by the AnyTalker pipeline)::

    clip = load_wan_clip("models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth", device="cuda",
                         dtype=torch.float16)
    feats = clip(image)        # image [B, 3, H, W] in [-1, 1] (or a list of [3, h, w] crops of any sizes)
                               # -> [B, 257, 1280]: the tokens after 31 of the 32 blocks

- :func:`convert_clip_state_dict`: official ``visual.*`` keys -> transformers keys (§4.4): the fused
  ``to_qkv`` split into q / k / v by rows, class / position embeddings reshaped, ``head`` transposed
  into ``visual_projection``; the XLM-R text tower (``textual.*``) and ``log_scale`` are dropped
  (AnyTalker never runs them; a visual-only file loads too).
- Sizes come from the shapes; the head count is not visible in any shape and defaults to the real
  head width 80 (1280 -> 16 heads); ``config`` (official factory names, e.g. the golden
  ``clip_tiny.config.json``) overrides it.
- Preprocessing (§4.1, the official ``CLIPModel.visual``, NOT ``CLIPImageProcessor``, which differs by up
  to 2.7): torch bicubic resize of the [-1, 1] tensor to image_size x image_size (aspect not kept,
  no crop, no antialias, no clamp), x * 0.5 + 0.5, per-channel (x - mean) / std, all in float32.
- Output: the hidden states after all blocks but the last, no final norm, no projection (= transformers
  ``hidden_states[-2]``). The last block is removed after the strict load, so it is never computed
  and ``last_hidden_state`` is that output.
"""

from __future__ import annotations

import math
import os
import re
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F

from .checkpoint import CheckpointError
from .encoder_io import finish, load_strict, read_config, read_weights

# §4.1: OpenAI CLIP normalisation constants, used by the official preprocessing
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
HEAD_DIM = 80  # ViT-H/14: 1280 = 16 heads x 80
# §4.2: the real visual tower (official factory names)
VIT_H14_CONFIG: dict[str, Any] = {"image_size": 224, "patch_size": 14, "vision_dim": 1280, "vision_heads": 16,
                                  "vision_layers": 32, "vision_mlp_ratio": 4, "embed_dim": 1024}
LAYER_NORM_EPS = 1e-5


def convert_clip_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official CLIP keys -> transformers ``CLIPVisionModelWithProjection`` keys (§4.4); ``textual.*``
    and ``log_scale`` dropped, unknown ``visual.*`` keys kept (the strict load names them)."""
    p = "vision_model."
    out: dict[str, torch.Tensor] = {}
    simple = {"visual.patch_embedding.weight": p + "embeddings.patch_embedding.weight"}
    simple.update({f"visual.pre_norm.{x}": f"{p}pre_layrnorm.{x}" for x in ("weight", "bias")})
    simple.update({f"visual.post_norm.{x}": f"{p}post_layernorm.{x}" for x in ("weight", "bias")})
    inner = {"norm1.": "layer_norm1.", "norm2.": "layer_norm2.", "attn.proj.": "self_attn.out_proj.",
             "mlp.0.": "mlp.fc1.", "mlp.2.": "mlp.fc2."}
    for key, v in state_dict.items():
        if key.startswith("textual.") or key == "log_scale":
            continue
        if key in simple:
            out[simple[key]] = v
        elif key == "visual.cls_embedding":  # [1, 1, D] -> [D]
            out[p + "embeddings.class_embedding"] = v.reshape(-1)
        elif key == "visual.pos_embedding":  # [1, N, D] -> [N, D]
            out[p + "embeddings.position_embedding.weight"] = v.reshape(v.shape[-2], v.shape[-1])
        elif key == "visual.head":  # [D, E], applied as x @ head -> nn.Linear weight [E, D]
            out["visual_projection.weight"] = v.t()
        elif m := re.fullmatch(r"visual\.transformer\.(\d+)\.(.*)", key):
            q, rest = f"{p}encoder.layers.{m.group(1)}.", m.group(2)
            if rest.startswith("attn.to_qkv."):  # rows: [queries | keys | values]
                x = rest[len("attn.to_qkv."):]
                for name, part in zip("qkv", v.chunk(3, dim=0)):
                    out[f"{q}self_attn.{name}_proj.{x}"] = part
                continue
            for a, b in inner.items():
                if rest.startswith(a):
                    rest = b + rest[len(a):]
                    break
            out[q + rest] = v
        else:
            out[key] = v
    return out


def infer_clip_config(state_dict: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Official factory arguments of the visual tower from the shapes (§4.3); heads from HEAD_DIM."""
    sd = state_dict
    width, _, patch, _ = sd["visual.patch_embedding.weight"].shape
    positions = sd["visual.pos_embedding"].shape[-2]
    grid = math.isqrt(positions - 1)
    if grid * grid != positions - 1:
        raise KeyError(f"visual.pos_embedding with {positions} positions (not 1 + a square)")
    layers = len({m.group(1) for k in sd if (m := re.match(r"visual\.transformer\.(\d+)\.", k))})
    return {"image_size": grid * patch, "patch_size": patch, "vision_dim": width,
            "vision_heads": max(1, width // HEAD_DIM), "vision_layers": layers,
            "vision_mlp_ratio": sd["visual.transformer.0.mlp.0.weight"].shape[0] / width,
            "embed_dim": sd["visual.head"].shape[1]}


def clip_hf_config(cfg: Mapping[str, Any]):
    """transformers ``CLIPVisionConfig`` for official factory arguments (§4.4): exact GELU, eps 1e-5."""
    from transformers import CLIPVisionConfig

    if cfg["vision_dim"] % cfg["vision_heads"]:
        raise ValueError(f"vision_dim {cfg['vision_dim']} is not a multiple of vision_heads {cfg['vision_heads']}")
    return CLIPVisionConfig(hidden_size=cfg["vision_dim"], intermediate_size=int(cfg["vision_dim"] * cfg["vision_mlp_ratio"]),
                            num_hidden_layers=cfg["vision_layers"], num_attention_heads=cfg["vision_heads"],
                            image_size=cfg["image_size"], patch_size=cfg["patch_size"], num_channels=3,
                            hidden_act="gelu", layer_norm_eps=LAYER_NORM_EPS, projection_dim=cfg["embed_dim"],
                            attention_dropout=0.0)


class WanClipEncoder:
    """CLIP visual tower (all blocks but the last) + the Wan preprocessing."""

    def __init__(self, model: torch.nn.Module, image_size: int) -> None:
        self.model = model
        self.image_size = int(image_size)
        self.mean = torch.tensor(CLIP_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(CLIP_STD, dtype=torch.float32).view(1, 3, 1, 1)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def to(self, device: torch.device | str) -> "WanClipEncoder":
        self.model.to(device)
        return self

    def preprocess(self, images: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        """[B, 3, H, W] in [-1, 1] (or crops [3, h, w] / [1, 3, h, w] of any sizes) -> normalised
        [B, 3, S, S] float32 pixels (§4.1)."""
        if isinstance(images, torch.Tensor):
            images = [images]
        resized = []
        for x in images:
            x = x[None] if x.ndim == 3 else x
            if x.ndim != 4 or x.shape[1] != 3:
                raise ValueError(f"images must be [B, 3, H, W] or [3, H, W], got {tuple(x.shape)}")
            resized.append(F.interpolate(x.to(self.device, torch.float32), size=(self.image_size, self.image_size),
                                         mode="bicubic", align_corners=False))
        x = torch.cat(resized) * 0.5 + 0.5  # no clamp: bicubic overshoot is kept, as officially
        return (x - self.mean.to(x.device)) / self.std.to(x.device)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        pixels = self.preprocess(images).to(self.dtype)
        return self.model.vision_model(pixel_values=pixels).last_hidden_state


def load_wan_clip(path: str | os.PathLike, *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                  config: Mapping[str, Any] | str | os.PathLike | None = None) -> WanClipEncoder:
    """Load the official CLIP file strictly (every ``visual.*`` key; text tower skipped) into a
    :class:`WanClipEncoder`. The official pipeline runs it in float16 on the GPU; float32 on CPU."""
    from transformers import CLIPVisionModelWithProjection

    raw = read_weights(path)
    try:
        inferred = infer_clip_config(raw)
    except (KeyError, IndexError) as exc:
        raise CheckpointError(f"{os.fspath(path)}: not a Wan CLIP state dict (key {exc})") from None
    cfg = dict(inferred, **{k: v for k, v in read_config(config).items() if k in VIT_H14_CONFIG})
    hf = clip_hf_config(cfg)
    model = load_strict(lambda: CLIPVisionModelWithProjection(hf), convert_clip_state_dict(raw), os.fspath(path),
                        "CLIP ViT visual tower",
                        buffers={"position_ids": lambda b: torch.arange(b.shape[-1]).expand(b.shape)})
    # AnyTalker uses the tokens after all blocks but the last (`use_31_block`): drop the last block
    layers = model.vision_model.encoder.layers
    model.vision_model.encoder.layers = layers[:-1]
    return WanClipEncoder(finish(model, device, dtype), cfg["image_size"])
