"""Today's deployment models, built from `transformers` model classes and their configs with
seeded weights: nothing is downloaded.  Each builder returns a module whose forward takes the
zoo entry's inputs positionally, in order, and returns its outputs as a tuple: the one calling
convention of the ONNX export, the torch runtime and the FLOP count.  (transformers 5.x must be
called with keyword arguments: positional ones collide with `use_cache`.)"""

from __future__ import annotations

from typing import Any

from torch import nn


class Wrapped(nn.Module):
    def __init__(self, net: nn.Module, inputs: tuple[str, ...], outputs: tuple[str, ...],
                 **fixed: Any) -> None:
        super().__init__()
        self.net = net
        self.inputs = inputs
        self.outputs = outputs
        self.fixed = fixed

    def forward(self, *args: Any) -> tuple:
        out = self.net(**dict(zip(self.inputs, args, strict=True)), **self.fixed)
        return tuple(getattr(out, k) for k in self.outputs)


def _tf() -> Any:
    try:
        import transformers
    except ImportError:
        raise ImportError("the transformer zoo models need transformers: pip install "
                          "'transformers==5.23.*'") from None
    return transformers


_BERT_IN = ("input_ids", "attention_mask", "token_type_ids")


def bert_base() -> nn.Module:
    t = _tf()
    return Wrapped(t.BertModel(t.BertConfig()), _BERT_IN, ("last_hidden_state", "pooler_output"))


def tinybert() -> nn.Module:
    t = _tf()
    cfg = t.BertConfig(vocab_size=1000, hidden_size=32, num_hidden_layers=2,
                       num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
    return Wrapped(t.BertModel(cfg), _BERT_IN, ("last_hidden_state", "pooler_output"))


def distilbert() -> nn.Module:
    t = _tf()
    return Wrapped(t.DistilBertModel(t.DistilBertConfig()), ("input_ids", "attention_mask"),
                   ("last_hidden_state",))


def gpt2() -> nn.Module:
    t = _tf()
    return Wrapped(t.GPT2LMHeadModel(t.GPT2Config()), ("input_ids", "attention_mask"),
                   ("logits",), use_cache=False)


def vit_b16() -> nn.Module:
    t = _tf()
    return Wrapped(t.ViTForImageClassification(t.ViTConfig(num_labels=1000)),
                   ("pixel_values",), ("logits",))


def yolos_tiny() -> nn.Module:
    t = _tf()
    cfg = t.YolosConfig(hidden_size=192, num_hidden_layers=12, num_attention_heads=3,
                        intermediate_size=768, image_size=[512, 512], num_labels=91)
    return Wrapped(t.YolosForObjectDetection(cfg), ("pixel_values",), ("logits", "pred_boxes"))


def whisper_tiny_encoder() -> nn.Module:
    t = _tf()
    cfg = t.WhisperConfig(d_model=384, encoder_layers=4, decoder_layers=4,
                          encoder_attention_heads=6, decoder_attention_heads=6,
                          encoder_ffn_dim=1536, decoder_ffn_dim=1536, num_mel_bins=80)
    return Wrapped(t.WhisperModel(cfg).get_encoder(), ("input_features",),
                   ("last_hidden_state",))
