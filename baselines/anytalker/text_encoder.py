"""The umT5-XXL text encoder from the original ``models_t5_umt5-xxl-enc-bf16.pth``, run by
transformers' ``UMT5EncoderModel``, with the official tokenizer call and text cleaning.

Spec: ``shared/spec/wan-encoders.md`` §3. API (used by the AnyTalker pipeline)::

    enc = load_umt5("models_t5_umt5-xxl-enc-bf16.pth", "google/umt5-xxl", device="cuda", dtype=torch.bfloat16)
    ctx = enc(["A man speaks to the camera.", negative_prompt])   # list of [L_i, 4096] tensors
    clean_text(s)                                                  # the official cleaning

- :func:`convert_umt5_state_dict`: official ``T5Encoder`` keys -> transformers keys (§3.4, a
  renaming; the token table goes to both tied names ``shared`` and ``encoder.embed_tokens``).
- Sizes come from the shapes (vocab, width, layers, heads = columns of a block's position table,
  head width, FFN width, buckets); ``config`` (official factory names, e.g. the golden
  ``t5_tiny.config.json``) may override them and sets ``text_len`` (512, the tokenizer's padded length).
- Call (``T5EncoderModel.__call__``): clean each text, tokenize with padding to ``text_len``,
  truncation and special tokens (EOS appended), lengths = mask entries > 0, encode, cut row i to
  its length. :meth:`WanTextEncoder.encode_ids` does the part after tokenisation.
- The tokenizer is ``AutoTokenizer.from_pretrained(tokenizer_dir)``: the real ``google/umt5-xxl``
  folder and the tiny test folder (a ``tokenizer.json``, see ``tests/baselines/anytalker/tiny_encoders.py``)
  load the same way, offline.
- Text cleaning needs ftfy (the official requirement, ``pip install ftfy``) for anything but plain
  printable ASCII without ``&``; for such text ftfy changes nothing, so without ftfy it is cleaned
  exactly by the remaining steps, and other text raises an error instead of being cleaned differently.
"""

from __future__ import annotations

import html
import os
import re
from typing import Any, Mapping, Sequence

import torch

from .checkpoint import CheckpointError
from .encoder_io import finish, load_strict, read_config, read_weights

TEXT_LEN = 512  # the official T5EncoderModel(text_len=512)
# §3.2: umT5-XXL encoder (official factory names); 5.68 G parameters in 242 tensors
UMT5_XXL_CONFIG: dict[str, Any] = {
    "vocab_size": 256384, "dim": 4096, "dim_attn": 4096, "dim_ffn": 10240, "num_heads": 64,
    "encoder_layers": 24, "num_buckets": 32, "shared_pos": False, "text_len": TEXT_LEN,
}
MAX_DISTANCE = 128  # relative_attention_max_distance of umT5 (not visible in any shape)
LAYER_NORM_EPS = 1e-6

_BLOCK = {"norm1.weight": "layer.0.layer_norm.weight",
          "pos_embedding.embedding.weight": "layer.0.SelfAttention.relative_attention_bias.weight",
          "norm2.weight": "layer.1.layer_norm.weight",
          "ffn.gate.0.weight": "layer.1.DenseReluDense.wi_0.weight",  # the tanh-GELU branch
          "ffn.fc1.weight": "layer.1.DenseReluDense.wi_1.weight",  # the linear branch
          "ffn.fc2.weight": "layer.1.DenseReluDense.wo.weight"}
_BLOCK.update({f"attn.{x}.weight": f"layer.0.SelfAttention.{x}.weight" for x in "qkvo"})

_ASCII_SAFE = re.compile(r"[\x20-\x25\x27-\x7e\t\n\r\x0b\x0c]*")  # printable ASCII except '&', + whitespace


def clean_text(text: str) -> str:
    """The official ``clean='whitespace'`` cleaning (§3.1): ftfy ``fix_text`` (defaults), HTML-unescape
    twice, strip, every run of whitespace -> one space, strip."""
    try:
        import ftfy
    except ImportError:
        if not _ASCII_SAFE.fullmatch(text):
            raise RuntimeError("cleaning a prompt with non-ASCII characters or '&' needs ftfy "
                               "(the official text cleaning): pip install ftfy") from None
        # ftfy.fix_text is the identity on printable ASCII without '&' (nothing to fix, no entity)
    else:
        text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text)).strip()
    return re.sub(r"\s+", " ", text).strip()


def convert_umt5_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official umT5 encoder keys -> transformers ``UMT5EncoderModel`` keys (§3.4). Unknown keys
    are kept (the strict load names them)."""
    out: dict[str, torch.Tensor] = {}
    for key, v in state_dict.items():
        if key == "token_embedding.weight":  # tied: both names are in a strict state dict
            out["shared.weight"] = v
            out["encoder.embed_tokens.weight"] = v
        elif key == "norm.weight":
            out["encoder.final_layer_norm.weight"] = v
        elif (m := re.fullmatch(r"blocks\.(\d+)\.(.*)", key)) and m.group(2) in _BLOCK:
            out[f"encoder.block.{m.group(1)}.{_BLOCK[m.group(2)]}"] = v
        else:
            out[key] = v
    return out


def infer_umt5_config(state_dict: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Official factory arguments from the shapes of an official-key state dict (§3.3)."""
    sd = state_dict
    if "pos_embedding.embedding.weight" in sd:
        raise KeyError("pos_embedding.embedding.weight (a shared position table: T5, not umT5)")
    vocab, dim = sd["token_embedding.weight"].shape
    layers = len({m.group(1) for k in sd if (m := re.match(r"blocks\.(\d+)\.", k))})
    buckets, heads = sd["blocks.0.pos_embedding.embedding.weight"].shape
    return {"vocab_size": vocab, "dim": dim, "dim_attn": sd["blocks.0.attn.q.weight"].shape[0],
            "dim_ffn": sd["blocks.0.ffn.fc1.weight"].shape[0], "num_heads": heads, "encoder_layers": layers,
            "num_buckets": buckets, "shared_pos": False, "text_len": TEXT_LEN}


def umt5_hf_config(cfg: Mapping[str, Any]):
    """transformers ``UMT5Config`` for official factory arguments (§3.4)."""
    from transformers import UMT5Config

    if cfg.get("shared_pos", False):
        raise ValueError("shared_pos=True (one position table) is T5, not umT5: not supported")
    return UMT5Config(vocab_size=cfg["vocab_size"], d_model=cfg["dim"], d_kv=cfg["dim_attn"] // cfg["num_heads"],
                      d_ff=cfg["dim_ffn"], num_layers=cfg["encoder_layers"], num_heads=cfg["num_heads"],
                      relative_attention_num_buckets=cfg["num_buckets"],
                      relative_attention_max_distance=MAX_DISTANCE,
                      # "gated-gelu" selects the tanh-approximated GELU of the official gate branch
                      feed_forward_proj="gated-gelu", layer_norm_epsilon=LAYER_NORM_EPS, dropout_rate=0.0,
                      is_encoder_decoder=False, use_cache=False)


class WanTextEncoder:
    """umT5 encoder + tokenizer: ``enc(texts)`` -> one [L_i, dim] tensor per text (trimmed)."""

    clean_text = staticmethod(clean_text)

    def __init__(self, model: torch.nn.Module, tokenizer: Any, text_len: int = TEXT_LEN) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.text_len = int(text_len)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dim(self) -> int:
        return int(self.model.config.d_model)

    def to(self, device: torch.device | str) -> "WanTextEncoder":
        """Move the model (e.g. off the GPU while the DiT runs)."""
        self.model.to(device)
        return self

    def tokenize(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Cleaned texts -> ids, mask [B, text_len] (padding to text_len, truncation, EOS appended)."""
        out = self.tokenizer([clean_text(t) for t in texts], padding="max_length", truncation=True,
                             max_length=self.text_len, add_special_tokens=True, return_tensors="pt")
        return out["input_ids"], out["attention_mask"]

    @torch.no_grad()
    def encode_ids(self, ids: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        """Encoder output of token rows, row i cut to its mask length (padded rows are computed,
        attending to real tokens only, and discarded, as officially)."""
        dev = self.device
        lengths = mask.gt(0).sum(dim=1).long()
        hidden = self.model(input_ids=ids.to(dev), attention_mask=mask.to(dev)).last_hidden_state
        return [h[:n] for h, n in zip(hidden, lengths.tolist())]

    def __call__(self, texts: Sequence[str] | str) -> list[torch.Tensor]:
        if isinstance(texts, str):
            texts = [texts]
        return self.encode_ids(*self.tokenize(list(texts)))


def load_tokenizer(tokenizer_dir: str | os.PathLike):
    """``AutoTokenizer`` from a local folder, never the hub."""
    from transformers import AutoTokenizer

    if not os.path.isdir(tokenizer_dir):
        raise FileNotFoundError(f"{os.fspath(tokenizer_dir)}: tokenizer folder not found")
    try:
        return AutoTokenizer.from_pretrained(os.fspath(tokenizer_dir), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{os.fspath(tokenizer_dir)}: cannot load the tokenizer: "
                              f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc


def load_umt5(path: str | os.PathLike, tokenizer_dir: str | os.PathLike, *, device: torch.device | str = "cpu",
              dtype: torch.dtype = torch.bfloat16,
              config: Mapping[str, Any] | str | os.PathLike | None = None) -> WanTextEncoder:
    """Load the umT5 encoder file strictly and its tokenizer folder into a :class:`WanTextEncoder`.

    ``dtype``: bfloat16 is the official precision (norm statistics and softmax stay float32);
    the golden tests use float32. ``config``: official factory arguments overriding the inferred ones."""
    from transformers import UMT5EncoderModel

    tokenizer = load_tokenizer(tokenizer_dir)
    raw = read_weights(path)
    try:
        inferred = infer_umt5_config(raw)
    except (KeyError, IndexError) as exc:
        raise CheckpointError(f"{os.fspath(path)}: not a umT5 encoder state dict (key {exc})") from None
    cfg = dict(inferred, **read_config(config))
    hf = umt5_hf_config(cfg)
    model = load_strict(lambda: UMT5EncoderModel(hf), convert_umt5_state_dict(raw), os.fspath(path),
                        "umT5 encoder")
    model.encoder.embed_tokens.weight = model.shared.weight  # re-tie (assign=True made two Parameters)
    if len(tokenizer) > cfg["vocab_size"]:
        raise CheckpointError(f"{os.fspath(tokenizer_dir)}: tokenizer has {len(tokenizer)} tokens, "
                              f"more than the {cfg['vocab_size']} rows of {os.fspath(path)}")
    return WanTextEncoder(finish(model, device, dtype), tokenizer, cfg.get("text_len", TEXT_LEN))
