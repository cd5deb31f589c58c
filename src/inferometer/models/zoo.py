"""The model zoo: names, input shapes and preprocessing.  Architectures live in `arch/`."""

from __future__ import annotations

from dataclasses import dataclass

_IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
_ARCFACE = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))  # [-1, 1], as insightface feeds it


@dataclass(frozen=True)
class ZooEntry:
    name: str
    builder: str  # "module:function" under inferometer.models.arch
    input_shape: tuple[int, int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    output_kind: str
    about: str
    trainer: str | None = None  # "module:function" that trains the net instead of calibrating


def _e(name: str, builder: str, size: int, norm: tuple = _IMAGENET, kind: str = "classes",
       about: str = "", trainer: str | None = None) -> ZooEntry:
    return ZooEntry(name, f"inferometer.models.arch.{builder}", (3, size, size), *norm, kind,
                    about, trainer and f"inferometer.models.arch.{trainer}")


ZOO: dict[str, ZooEntry] = {e.name: e for e in (
    _e("resnet18", "resnet:resnet18", 224, about="ResNet-18"),
    _e("resnet50", "resnet:resnet50", 224, about="ResNet-50 v1.5 (stride on the 3x3 conv)"),
    _e("resnext101_32x8d", "resnet:resnext101_32x8d", 224, about="ResNeXt-101 32x8d"),
    _e("vgg16", "classic:vgg16", 224, about="VGG-16 (no BN)"),
    _e("alexnet", "classic:alexnet", 224, about="AlexNet (torchvision variant)"),
    _e("inception_v3", "inception:inception_v3", 299, about="Inception v3, no aux head"),
    _e("mobilenet_v2", "mobilenet:mobilenet_v2", 224, about="MobileNet v2, width 1.0"),
    _e("arcface_r100", "iresnet:iresnet100", 112, _ARCFACE, "embedding",
       about="insightface IResNet-100, 512-d embedding"),
    _e("tinynet", "tiny:tinynet", 32, about="3 conv layers at 32x32, for tests and smoke runs"),
    _e("digits", "digits:digitsnet", 16, _ARCFACE, about="small CNN trained on sklearn's digits "
       "(real labels: accuracy runs)", trainer="digits:train"),
)}


def describe(entry: ZooEntry) -> tuple[float, float]:
    """(parameters in millions, GFLOPs counted as multiply-adds, as torchvision and the papers
    count them), from a forward pass on the meta device: no memory, no arithmetic."""
    import importlib

    import torch
    from torch import nn

    module, _, fn = entry.builder.partition(":")
    macs = 0

    def hook(mod: nn.Module, inp: tuple, out: torch.Tensor) -> None:
        nonlocal macs
        if isinstance(mod, nn.Conv2d):
            k = mod.in_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1]
            macs += out.numel() * k
        elif isinstance(mod, nn.Linear):
            macs += out.numel() * mod.in_features

    with torch.device("meta"):
        net = getattr(importlib.import_module(module), fn)().eval()
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.register_forward_hook(hook)
        net(torch.empty(1, *entry.input_shape))
    params = sum(p.numel() for p in net.parameters())
    return params / 1e6, macs / 1e9
