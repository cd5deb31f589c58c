"""The model zoo: names, inputs and outputs, preprocessing.  Architectures live in `arch/`
(the convnets written out, the deployment models built from `transformers` configs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .io import Input, ModelIO, Tensor, Values, image_io

_IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
_ARCFACE = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))  # [-1, 1], as insightface feeds it
_HALF = _ARCFACE  # ViT's image processor: (x - 0.5) / 0.5


@dataclass(frozen=True)
class ZooEntry:
    name: str
    builder: str  # "module:function" under inferometer.models.arch; returns the eval module
    io: ModelIO
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    about: str
    trainer: str | None = None  # "module:function" that trains the net instead of calibrating
    # BatchNorm/rescale calibration on seeded images (the convnets: see models.export)
    calibrate: bool = True

    @property
    def input_shape(self) -> tuple[int, int, int]:
        c, h, w = self.io.inputs[0].tensor.shape[1:]
        return int(c), int(h), int(w)

    @property
    def output_kind(self) -> str:
        return self.io.outputs[0].kind


def _e(name: str, builder: str, size: int, norm: tuple = _IMAGENET, kind: str = "classes",
       about: str = "", trainer: str | None = None, out: int = 1000) -> ZooEntry:
    io = image_io("input", (3, size, size), kind=kind, classes=out)
    return ZooEntry(name, f"inferometer.models.arch.{builder}", io, *norm, about,
                    trainer and f"inferometer.models.arch.{trainer}")


def _tokens(vocab: int, *names: str) -> tuple[Input, ...]:
    kinds = {"input_ids": Values("tokens", 0, vocab, f"below the vocabulary size {vocab}"),
             "attention_mask": Values("ones", why="a mask: all ones"),
             "token_type_ids": Values("zeros", why="segment ids: zeros")}
    return tuple(Input(Tensor(n, "int64", ("batch", "seq")), kinds[n]) for n in names)


def _hf(name: str, builder: str, inputs: tuple[Input, ...], outputs: tuple[Tensor, ...],
        about: str, seq: int | None = 128, norm: tuple = ((0.0,) * 3, (1.0,) * 3)) -> ZooEntry:
    io = ModelIO(inputs, outputs, batch_dim="batch", defaults=(("seq", seq),) if seq else ())
    return ZooEntry(name, f"inferometer.models.arch.hf:{builder}", io, *norm, about,
                    calibrate=False)


def _f(name: str, *shape: int | str, kind: str = "tensor") -> Tensor:
    return Tensor(name, "float32", ("batch", *shape), kind)


_BERT = ("input_ids", "attention_mask", "token_type_ids")
ZOO: dict[str, ZooEntry] = {e.name: e for e in (
    _e("resnet18", "resnet:resnet18", 224, about="ResNet-18"),
    _e("resnet50", "resnet:resnet50", 224, about="ResNet-50 v1.5 (stride on the 3x3 conv)"),
    _e("resnext101_32x8d", "resnet:resnext101_32x8d", 224, about="ResNeXt-101 32x8d"),
    _e("vgg16", "classic:vgg16", 224, about="VGG-16 (no BN)"),
    _e("alexnet", "classic:alexnet", 224, about="AlexNet (torchvision variant)"),
    _e("inception_v3", "inception:inception_v3", 299, about="Inception v3, no aux head"),
    _e("mobilenet_v2", "mobilenet:mobilenet_v2", 224, about="MobileNet v2, width 1.0"),
    _e("arcface_r100", "iresnet:iresnet100", 112, _ARCFACE, "embedding",
       about="insightface IResNet-100, 512-d embedding", out=512),
    _e("tinynet", "tiny:tinynet", 32, about="3 conv layers at 32x32, for tests and smoke runs",
       out=10),
    _e("digits", "digits:digitsnet", 16, _ARCFACE, about="small CNN trained on sklearn's digits "
       "(real labels: accuracy runs)", trainer="digits:train", out=10),
    _hf("bert_base", "bert_base", _tokens(30522, *_BERT),
        (_f("last_hidden_state", "seq", 768), _f("pooler_output", 768, kind="embedding")),
        "BERT-base encoder (transformers BertModel, seeded), seq 128 by default"),
    _hf("distilbert", "distilbert", _tokens(30522, "input_ids", "attention_mask"),
        (_f("last_hidden_state", "seq", 768),),
        "DistilBERT encoder (transformers DistilBertModel, seeded)"),
    _hf("gpt2", "gpt2", _tokens(50257, "input_ids", "attention_mask"),
        (_f("logits", "seq", 50257, kind="classes"),),
        "GPT-2 small, one forward pass over the prompt (prefill), no KV cache"),
    _hf("vit_b16", "vit_b16",
        (Input(_f("pixel_values", 3, 224, 224), Values("image", why="RGB image, (x-0.5)/0.5")),),
        (_f("logits", 1000, kind="classes"),), "ViT-B/16 classifier at 224x224", seq=None,
        norm=_HALF),
    _hf("yolos_tiny", "yolos_tiny",
        (Input(_f("pixel_values", 3, 512, 512), Values("image", why="RGB image, ImageNet "
                                                         "normalisation")),),
        (_f("logits", 100, 92, kind="classes"), _f("pred_boxes", 100, 4)),
        "YOLOS-tiny detector (ViT, 100 detection tokens) at 512x512: two outputs", seq=None,
        norm=_IMAGENET),
    _hf("whisper_tiny_encoder", "whisper_tiny_encoder",
        (Input(_f("input_features", 80, 3000), Values("normal", why="log-mel features: "
                                                        "standard normal")),),
        (_f("last_hidden_state", 1500, 384),), "Whisper-tiny audio encoder, 30 s of 80 "
        "log-mel bins", seq=None),
    _hf("tinybert", "tinybert", _tokens(1000, *_BERT),
        (_f("last_hidden_state", "seq", 32), _f("pooler_output", 32, kind="embedding")),
        "2-layer BERT with hidden size 32, seq 16 by default: for tests", seq=16),
)}


def describe(entry: ZooEntry) -> tuple[float, float]:
    """(parameters in millions, GFLOPs counted as multiply-adds, as torchvision and the papers
    count them) at the model's default shape (batch 1), from a forward pass on the meta device
    under PyTorch's FLOP counter: no memory, no arithmetic; matmuls of attention included."""
    import importlib

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    module, _, fn = entry.builder.partition(":")
    shapes = entry.io.bind(1, {})
    for device in ("meta", "cpu"):  # attention masks call .item(): those need real tensors
        try:
            with torch.device(device):
                net = getattr(importlib.import_module(module), fn)().eval()
                args = [_example(torch, i.tensor.dtype, shapes[i.name]) for i in entry.io.inputs]
                counter = FlopCounterMode(display=False)
                with counter, torch.no_grad():
                    net(*args)
            break
        except RuntimeError:
            if device == "cpu":
                raise
    params = sum(p.numel() for p in net.parameters())
    return params / 1e6, counter.get_total_flops() / 2 / 1e9


def _example(torch: Any, dtype: str, shape: tuple[int, ...]) -> Any:
    if dtype.startswith("float"):
        return torch.zeros(shape, dtype=getattr(torch, dtype))
    return torch.ones(shape, dtype=getattr(torch, dtype))  # 1: a valid token id and a mask
