"""A whole tiny AnyTalker-1.3B checkpoint folder, every file in its original format.

``write_tiny_checkpoints(root)`` lays out the official README's ``checkpoints/`` folder::

    root/AnyTalker/1_3B-single-v1.pth          {"model": DiT state dict}, official keys, AF variant
    root/Wan2.1-Fun-1.3B-Inp/...               VAE, umT5 (+ tokenizer), CLIP (tiny_encoders.py)
    root/wav2vec2-base-960h/config.json, preprocessor_config.json, pytorch_model.bin
                                               transformers save_pretrained, torch pickle like the hub file

and writes ``root/model_configs.json`` with the DiT sizes (the official config JSON cannot carry
them: it drops text_dim and the audio widths are hard-wired, spec §3.1). No config_af2v_1_3B.json:
it is optional for the loader. All weights are random (seeded) initialisations of the real
architectures at tiny sizes, so they exercise the real loading code and nothing else.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

# wav2vec2: the golden tiny configuration's sizes (shared/golden/anytalker/wav2vec_tiny.config.json),
# real conv strides (50 Hz), eval-mode dropouts irrelevant
WAV2VEC_TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                    conv_dim=[16] * 7, conv_stride=[5, 2, 2, 2, 2, 2, 2], conv_kernel=[10, 3, 3, 3, 3, 2, 2],
                    conv_bias=False, feat_extract_norm="group", num_conv_pos_embeddings=16,
                    num_conv_pos_embedding_groups=4, do_stable_layer_norm=False, apply_spec_augment=False,
                    layerdrop=0.0)


def dit_fields(sizes: dict) -> dict:
    """AnyTalkerConfig fields of the tiny DiT matching the tiny encoders' widths."""
    return {
        "dim": 64, "ffn_dim": 128, "num_heads": 2, "num_layers": 2, "text_dim": sizes["t5_dim"],
        "clip_dim": sizes["clip_dim"], "audio_blocks": WAV2VEC_TINY["num_hidden_layers"],
        "audio_channels": WAV2VEC_TINY["hidden_size"], "audio_intermediate_dim": 16, "audio_context_tokens": 4,
    }


def write_tiny_checkpoints(root: str | Path, seed: int = 0) -> dict:
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    from interactive_eyes.baselines.anytalker import AnyTalkerConfig, AnyTalkerDiT

    from tiny_encoders import write_tiny_wan_encoders

    root = Path(root)
    enc = write_tiny_wan_encoders(root / "Wan2.1-Fun-1.3B-Inp", seed=seed)
    fields = dit_fields(enc["sizes"])

    torch.manual_seed(seed)
    dit = AnyTalkerDiT(AnyTalkerConfig(**fields))
    (root / "AnyTalker").mkdir(parents=True, exist_ok=True)
    torch.save({"model": dit.state_dict()}, root / "AnyTalker" / "1_3B-single-v1.pth")

    torch.manual_seed(seed + 1)
    w2v = Wav2Vec2Model(Wav2Vec2Config(**WAV2VEC_TINY)).eval()
    folder = root / "wav2vec2-base-960h"
    w2v.save_pretrained(folder, safe_serialization=False)  # pytorch_model.bin, as the hub repository
    Wav2Vec2FeatureExtractor(do_normalize=True, sampling_rate=16000, return_attention_mask=False).save_pretrained(folder)

    configs = root / "model_configs.json"
    configs.write_text(json.dumps({"dit": fields}))
    return {"root": root, "model_configs": configs, "dit_fields": fields, **enc}
