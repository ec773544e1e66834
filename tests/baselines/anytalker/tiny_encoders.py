"""Tiny random Wan2.1 encoder files in the ORIGINAL official formats, for end-to-end tests.

``write_tiny_wan_encoders(folder)`` writes, under the file names of the Wan2.1 base folder
(``shared/spec/wan-encoders.md`` §1)::

    folder/Wan2.1_VAE.pth                                            VAE, float32, official keys (194)
    folder/models_t5_umt5-xxl-enc-bf16.pth                           umT5 encoder, bfloat16, official keys
    folder/google/umt5-xxl/{tokenizer.json, tokenizer_config.json, special_tokens_map.json}
    folder/models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth   CLIP (visual + a 1-block text tower
                                                                     + log_scale), float32, official keys

and returns a dict of those paths plus the sizes (``sizes``) a consumer needs to build matching
tiny models (e.g. the DiT's text_dim = T5 width, clip_dim = CLIP width, CLIP tokens).

Weights are the random initialisations of the real library classes (diffusers
``AutoencoderKLWan``, transformers ``UMT5EncoderModel`` / ``CLIPVisionModelWithProjection``) at tiny
sizes, seeded, and renamed to the official keys by the inverse of the loaders' conversions, so the
files exercise the real loading code (``load_wan_vae``, ``load_umt5``, ``load_wan_clip``) with no
config argument: every size is inferred from the shapes (the CLIP head width, which shapes cannot
tell, is the real 80, hence width 160 = 2 heads).

Tokenizer: the real ``google/umt5-xxl`` folder is a SentencePiece model that cannot be downloaded
here, so the tiny folder holds a ``tokenizers`` Unigram model with the umT5 layout (pad 0, EOS 1
appended by the post-processor, unk 2, Metaspace pre-tokenizer) saved as ``tokenizer.json`` with
``tokenizer_class: T5Tokenizer``. ``AutoTokenizer.from_pretrained(folder)`` loads it offline, exactly
the way it loads the real folder (which also ships a ``tokenizer.json``).
"""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

import torch

VAE_FILE = "Wan2.1_VAE.pth"
T5_FILE = "models_t5_umt5-xxl-enc-bf16.pth"
T5_TOKENIZER_DIR = "google/umt5-xxl"
CLIP_FILE = "models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth"

_VAE_RES = {"norm1.": "residual.0.", "conv1.": "residual.2.", "norm2.": "residual.3.",
            "conv2.": "residual.6.", "conv_shortcut.": "shortcut."}


def _vae_block(rest: str) -> str:
    for new, old in _VAE_RES.items():
        if rest.startswith(new):
            return old + rest[len(new):]
    return rest


def vae_to_official(sd: dict[str, torch.Tensor], num_res_blocks: int) -> dict[str, torch.Tensor]:
    """diffusers ``AutoencoderKLWan`` keys -> official ``Wan2.1_VAE.pth`` keys (inverse of §2.6)."""
    per_stage = num_res_blocks + 1  # decoder stages have one more residual block than encoder stages
    out = {}
    for key, v in sd.items():
        new = key
        if key.startswith("quant_conv."):
            new = "conv1." + key[len("quant_conv."):]
        elif key.startswith("post_quant_conv."):
            new = "conv2." + key[len("post_quant_conv."):]
        else:
            part, _, rest = key.partition(".")
            for a, b in (("conv_in.", "conv1."), ("norm_out.", "head.0."), ("conv_out.", "head.2.")):
                if rest.startswith(a):
                    rest = b + rest[len(a):]
            if m := re.match(r"mid_block\.attentions\.0\.(.*)", rest):
                rest = "middle.1." + m.group(1)
            elif m := re.match(r"mid_block\.resnets\.(\d)\.(.*)", rest):
                rest = f"middle.{2 * int(m.group(1))}." + _vae_block(m.group(2))
            elif m := re.match(r"down_blocks\.(\d+)\.(.*)", rest):
                rest = f"downsamples.{m.group(1)}." + _vae_block(m.group(2))
            elif m := re.match(r"up_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", rest):
                rest = f"upsamples.{int(m.group(1)) * (per_stage + 1) + int(m.group(2))}." + _vae_block(m.group(3))
            elif m := re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.(.*)", rest):
                rest = f"upsamples.{int(m.group(1)) * (per_stage + 1) + per_stage}." + m.group(2)
            new = f"{part}.{rest}"
        out[new] = v
    return out


def t5_to_official(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers ``UMT5EncoderModel`` keys -> official umT5 ``T5Encoder`` keys (inverse of §3.4)."""
    names = {"layer.0.layer_norm.weight": "norm1.weight", "layer.1.layer_norm.weight": "norm2.weight",
             "layer.0.SelfAttention.relative_attention_bias.weight": "pos_embedding.embedding.weight",
             "layer.1.DenseReluDense.wi_0.weight": "ffn.gate.0.weight",
             "layer.1.DenseReluDense.wi_1.weight": "ffn.fc1.weight",
             "layer.1.DenseReluDense.wo.weight": "ffn.fc2.weight"}
    names.update({f"layer.0.SelfAttention.{x}.weight": f"attn.{x}.weight" for x in "qkvo"})
    out = {"token_embedding.weight": sd["shared.weight"], "norm.weight": sd["encoder.final_layer_norm.weight"]}
    for key, v in sd.items():
        if m := re.match(r"encoder\.block\.(\d+)\.(.*)", key):
            out[f"blocks.{m.group(1)}.{names[m.group(2)]}"] = v
    return out


def clip_to_official(sd: dict[str, torch.Tensor], layers: int) -> dict[str, torch.Tensor]:
    """transformers ``CLIPVisionModelWithProjection`` keys -> official ``visual.*`` keys (inverse of §4.4)."""
    p = "vision_model."
    out = {
        "visual.patch_embedding.weight": sd[p + "embeddings.patch_embedding.weight"],
        "visual.cls_embedding": sd[p + "embeddings.class_embedding"].reshape(1, 1, -1),
        "visual.pos_embedding": sd[p + "embeddings.position_embedding.weight"][None],
        "visual.head": sd["visual_projection.weight"].t().contiguous(),
    }
    for a, b in (("pre_layrnorm", "pre_norm"), ("post_layernorm", "post_norm")):
        for x in ("weight", "bias"):
            out[f"visual.{b}.{x}"] = sd[f"{p}{a}.{x}"]
    for n in range(layers):
        q = f"{p}encoder.layers.{n}."
        o = f"visual.transformer.{n}."
        for x in ("weight", "bias"):
            out[o + f"norm1.{x}"] = sd[q + f"layer_norm1.{x}"]
            out[o + f"norm2.{x}"] = sd[q + f"layer_norm2.{x}"]
            out[o + f"attn.to_qkv.{x}"] = torch.cat([sd[q + f"self_attn.{y}_proj.{x}"] for y in "qkv"])
            out[o + f"attn.proj.{x}"] = sd[q + f"self_attn.out_proj.{x}"]
            out[o + f"mlp.0.{x}"] = sd[q + f"mlp.fc1.{x}"]
            out[o + f"mlp.2.{x}"] = sd[q + f"mlp.fc2.{x}"]
    return out


def tiny_textual(embed_dim: int, gen: torch.Generator, dim: int = 16, vocab: int = 64, positions: int = 14,
                 blocks: int = 1) -> dict[str, torch.Tensor]:
    """The XLM-R text tower keys of the official CLIP file (§4.3) at a tiny size; never run.
    Its 2-layer head goes through (dim + embed_dim) // 2 channels (1024 in the real file)."""
    def r(*shape):
        return torch.randn(*shape, generator=gen) * 0.02

    mid = (dim + embed_dim) // 2
    t = {"textual.token_embedding.weight": r(vocab, dim), "textual.type_embedding.weight": r(1, dim),
         "textual.pos_embedding.weight": r(positions, dim), "textual.norm.weight": torch.ones(dim),
         "textual.norm.bias": torch.zeros(dim), "textual.head.0.weight": r(mid, dim),
         "textual.head.2.weight": r(embed_dim, mid)}
    for n in range(blocks):
        b = f"textual.blocks.{n}."
        for x in "qkvo":
            t[b + f"attn.{x}.weight"], t[b + f"attn.{x}.bias"] = r(dim, dim), torch.zeros(dim)
        for x in ("norm1", "norm2"):
            t[b + f"{x}.weight"], t[b + f"{x}.bias"] = torch.ones(dim), torch.zeros(dim)
        t[b + "ffn.0.weight"], t[b + "ffn.0.bias"] = r(4 * dim, dim), torch.zeros(4 * dim)
        t[b + "ffn.2.weight"], t[b + "ffn.2.bias"] = r(dim, 4 * dim), torch.zeros(dim)
    return t


def write_tiny_tokenizer(folder: Path) -> dict:
    """A tiny umT5-layout tokenizer folder that ``AutoTokenizer.from_pretrained`` loads offline."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    specials = ["<pad>", "</s>", "<unk>"]  # ids 0, 1, 2 as in umT5
    words = ["▁a", "▁the", "▁man", "▁woman", "▁person", "▁people", "▁two", "▁three", "▁speaks", "▁talks",
             "▁listens", "▁to", "▁and", "▁camera", "▁is", "▁are", "▁talking", "▁video"]
    chars = ["▁"] + list(string.ascii_letters + string.digits + string.punctuation)
    vocab = [(s, 0.0) for s in specials] + [(w, -2.0) for w in words] + [(c, -6.0) for c in chars]
    tok = Tokenizer(models.Unigram(vocab, unk_id=2, byte_fallback=False))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(" {2,}", " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                       special_tokens=[("</s>", 1)])
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    special = {"pad_token": "<pad>", "eos_token": "</s>", "unk_token": "<unk>"}
    (folder / "special_tokens_map.json").write_text(json.dumps(special))
    (folder / "tokenizer_config.json").write_text(json.dumps(
        dict(special, tokenizer_class="T5Tokenizer", model_max_length=512, extra_ids=0,
             additional_special_tokens=[])))
    return {"vocab_size": len(vocab)}


def write_tiny_wan_encoders(folder: str | Path, *, seed: int = 0, vae_dim: int = 8, t5_dim: int = 32,
                            t5_layers: int = 2, t5_heads: int = 4, clip_width: int = 160, clip_layers: int = 3,
                            clip_image_size: int = 224, clip_embed_dim: int = 24) -> dict:
    """Write the three tiny official-format encoder files (+ tokenizer folder) into ``folder``.

    Defaults: VAE base width 8 (z_dim 16, real structure); umT5 width 32, 2 layers, 4 heads,
    vocab 128; CLIP ViT width 160 (2 heads of the real width 80), 3 blocks (2 used), patch 14 at
    224 px (257 tokens, as the real model). Returns paths and sizes."""
    from diffusers import AutoencoderKLWan
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection, UMT5Config, UMT5EncoderModel

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)

    vae = AutoencoderKLWan(base_dim=vae_dim, z_dim=16)
    torch.save(vae_to_official(vae.state_dict(), num_res_blocks=2), folder / VAE_FILE)

    tok = write_tiny_tokenizer(folder / T5_TOKENIZER_DIR)
    t5_vocab = 128
    assert tok["vocab_size"] <= t5_vocab
    t5 = UMT5EncoderModel(UMT5Config(vocab_size=t5_vocab, d_model=t5_dim, d_kv=t5_dim // t5_heads, d_ff=2 * t5_dim,
                                     num_layers=t5_layers, num_heads=t5_heads, feed_forward_proj="gated-gelu",
                                     relative_attention_num_buckets=32, relative_attention_max_distance=128))
    t5_sd = {k: v.to(torch.bfloat16) for k, v in t5_to_official(t5.state_dict()).items()}
    torch.save(t5_sd, folder / T5_FILE)

    clip = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=clip_width, intermediate_size=4 * clip_width, num_hidden_layers=clip_layers,
        num_attention_heads=clip_width // 80, image_size=clip_image_size, patch_size=14, hidden_act="gelu",
        layer_norm_eps=1e-5, projection_dim=clip_embed_dim))
    clip_sd = clip_to_official(clip.state_dict(), clip_layers)
    clip_sd.update(tiny_textual(clip_embed_dim, gen))
    clip_sd["log_scale"] = torch.tensor(2.6592600345611572)  # ln(1 / 0.07), as initialised officially
    torch.save(clip_sd, folder / CLIP_FILE)

    return {
        "vae": folder / VAE_FILE, "t5": folder / T5_FILE, "tokenizer": folder / T5_TOKENIZER_DIR,
        "clip": folder / CLIP_FILE,
        "sizes": {"vae_z_dim": 16, "t5_dim": t5_dim, "t5_vocab": t5_vocab, "clip_dim": clip_width,
                  "clip_tokens": (clip_image_size // 14) ** 2 + 1, "clip_image_size": clip_image_size},
    }
