"""PyTorch on the CPU and on CUDA.  On the CPU the variants are today's forms of "oneDNN layout
+ cached weights": channels_last memory format, TorchScript trace + freeze (weights folded and
pre-packed), and torch.compile with Inductor's freezing; bf16 through autocast.  On CUDA:
eager, channels_last, CUDA graphs (captured once at load, replayed per run: removes the kernel
launch cost that dominates small batches) and torch.compile; fp16 as a half model, bf16 through
autocast."""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..models.ref import ModelRef
from ._torch_cuda import DeviceFeed, host_outputs
from .base import Availability, LoadOptions, Variant, installed, variant


@dataclass(frozen=True)
class _Recipe:
    channels_last: bool = False
    jit_freeze: bool = False
    compile: bool = False
    bf16: bool = False
    int8: bool = False
    fp16: bool = False  # half model and input (CUDA)
    cuda_graph: bool = False
    devices: tuple[str, ...] = ("cpu", "cuda")

    @property
    def precision(self) -> str:
        return "int8" if self.int8 else "bf16" if self.bf16 else "fp16" if self.fp16 else "fp32"


_CPU, _CUDA = ("cpu",), ("cuda",)
_RECIPES = {
    "eager": _Recipe(),
    "channels_last": _Recipe(channels_last=True),
    "jit_freeze": _Recipe(channels_last=True, jit_freeze=True, devices=_CPU),
    "compile": _Recipe(channels_last=True, compile=True),
    "bf16": _Recipe(channels_last=True, bf16=True),
    "compile_bf16": _Recipe(channels_last=True, compile=True, bf16=True),
    "int8": _Recipe(int8=True, devices=_CPU),
    "cuda_graph": _Recipe(channels_last=True, cuda_graph=True, devices=_CUDA),
    "fp16": _Recipe(fp16=True, devices=_CUDA),
    "channels_last_fp16": _Recipe(channels_last=True, fp16=True, devices=_CUDA),
    "cuda_graph_fp16": _Recipe(channels_last=True, fp16=True, cuda_graph=True, devices=_CUDA),
    "cuda_graph_bf16": _Recipe(channels_last=True, bf16=True, cuda_graph=True, devices=_CUDA),
    "compile_fp16": _Recipe(channels_last=True, compile=True, fp16=True, devices=_CUDA),
}
_HELP = {
    "eager": "eager mode, NCHW",
    "channels_last": "eager, model and input in channels_last (oneDNN's blocked-friendly layout)",
    "jit_freeze": "torch.jit.trace + torch.jit.freeze, channels_last (cached, folded weights)",
    "compile": "torch.compile with inductor freezing, channels_last (first call compiles)",
    "bf16": "eager channels_last under bf16 autocast",
    "compile_bf16": "torch.compile with freezing, channels_last, bf16 autocast",
    "int8": "PT2E static int8 (torchao X86InductorQuantizer), calibrated, torch.compile "
            "with freezing; load includes export, calibration and compile",
    "cuda_graph": "CUDA graph of the channels_last model, captured at load, replayed per run",
    "fp16": "half model and input, NCHW (CUDA)",
    "channels_last_fp16": "half model and input, channels_last (CUDA)",
    "cuda_graph_fp16": "CUDA graph of the half channels_last model",
    "cuda_graph_bf16": "CUDA graph of the channels_last model under bf16 autocast",
    "compile_fp16": "torch.compile of the half channels_last model (first call compiles)",
}


def _pt2e_int8(torch: Any, net: Any, model: ModelRef, options: LoadOptions) -> Any:
    """torch.export -> X86 Inductor quantizer -> calibrate -> convert -> compile (freezing).
    PT2E lives in torchao since torch 2.10 removed torch.ao.quantization.quantize_pt2e."""
    import torch._inductor.config as inductor_config
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from ..models.preprocess import calibration_feeds

    # calibrated at the cell's own shapes: the exported graph is specialised to them
    feeds, _ = calibration_feeds(model, options.batch, _cell_dims(model, options))
    batches = [tuple(torch.from_numpy(f[i.name]) for i in model.io.inputs) for f in feeds]
    exported = torch.export.export(net, batches[0]).module()
    quantizer = xiq.X86InductorQuantizer()
    quantizer.set_global(xiq.get_default_x86_inductor_quantization_config())
    prepared = prepare_pt2e(exported, quantizer)
    with torch.no_grad():
        for x in batches:
            prepared(*x)
    inductor_config.freezing = True
    return torch.compile(convert_pt2e(prepared))


class _TorchSession:
    def __init__(self, torch: Any, fn: Any, model: ModelRef, recipe: _Recipe,
                 info: dict[str, str]) -> None:
        self._torch = torch
        self._fn = fn
        self._recipe = recipe
        # the CUDA sessions' feed on the CPU device: images normalised, other inputs as
        # they are, 4-D tensors channels_last where the recipe says so
        self._feed = DeviceFeed(torch, model, None, recipe.channels_last, "cpu")
        self._info = info

    def prepare(self, inputs: Mapping[str, np.ndarray]) -> Any:
        return self._feed(inputs)

    def run(self, feed: Any) -> Sequence[np.ndarray]:
        torch = self._torch
        # no_grad, not inference_mode, for PT2E int8: its frozen graph holds plain tensors
        grad_off = torch.no_grad() if self._recipe.int8 else torch.inference_mode()
        with grad_off, torch.autocast("cpu", torch.bfloat16, enabled=self._recipe.bf16):
            y = self._fn(*feed)
        return host_outputs(y)

    def info(self) -> dict[str, str]:
        return self._info

    def close(self) -> None:
        self._fn = None


def _cell_dims(model: ModelRef, options: LoadOptions) -> dict[str, int]:
    """The symbolic dims' values in this cell, read back from its input shapes."""
    shapes = dict(options.shapes)
    dims: dict[str, int] = {}
    for i in model.io.inputs:
        for d, size in zip(i.tensor.shape, shapes.get(i.name, ()), strict=False):
            if isinstance(d, str) and d != model.io.batch_dim:
                dims[d] = size
    return dims


def _module(torch: Any, model: ModelRef) -> Any:
    """The eval-mode module: a zoo architecture with its saved weights, the user's
    torch.export program (loaded weights-only) or TorchScript module."""
    if model.torch_program and not model.torch_program.endswith(".pt2"):
        from ..models.torchscript import load_script

        return load_script(model.torch_program)
    if model.torch_program:
        from ..models.torchfile import load_program

        return load_program(model.torch_program).module()
    module, _, fn = (model.torch_builder or "").partition(":")
    net = getattr(importlib.import_module(module), fn)()
    net.load_state_dict(torch.load(model.torch_weights, weights_only=True))
    return net.eval()


class Torch:
    name: ClassVar[str] = "torch"
    variants: ClassVar[tuple[Variant, ...]] = tuple(
        Variant(k, r.precision, _HELP[k], r.devices) for k, r in _RECIPES.items())
    default_variants: ClassVar[tuple[str, ...]] = ("eager",)
    precisions: ClassVar[dict[str, str]] = {"fp32": "eager", "bf16": "bf16", "int8": "int8",
                                            "fp16": "fp16"}

    def available(self) -> Availability:
        return installed("torch", ("torch",),
                         "pip install torch==2.13.0 (CPU build; pin it with a constraints file)")

    def version(self) -> str:
        import torch
        return torch.__version__

    def device_unavailable(self, device: str) -> str | None:
        from ._torch_cuda import torch_cuda_missing

        return torch_cuda_missing() if device == "cuda" else None

    def supports(self, model: ModelRef) -> str | None:
        if model.torch_program is None and (model.torch_builder is None
                                            or model.torch_weights is None):
            return ("torch runs zoo models, torch.export programs (.pt2) and TorchScript "
                    "modules: an .onnx file carries no PyTorch module")
        return None

    def deploy_snippet(self, variant: str, threads: int | None) -> str:
        """The settings a cell of `variant` used, for a user's own server."""
        r = _RECIPES[variant]
        lines = ["import torch"]
        if threads is not None:
            lines += [f"torch.set_num_threads({threads})", "torch.set_num_interop_threads(1)"]
        lines.append("model = model.eval()")
        if r.channels_last:
            lines.append("model = model.to(memory_format=torch.channels_last)  # and inputs")
        if r.jit_freeze:
            lines.append("model = torch.jit.freeze(torch.jit.trace(model, example))")
        if r.int8:
            lines.append("# int8: PT2E prepare/convert with torchao's X86InductorQuantizer, "
                         "calibrated on your data, then torch.compile")
        if r.compile:
            lines.append('model = torch.compile(model, backend="inductor")  # with '
                         "torch._inductor.config.freezing = True")
        call = "model(x)"
        if r.bf16:
            call = "with torch.autocast('cpu', dtype=torch.bfloat16): model(x)"
        lines.append(f"with torch.inference_mode(): {call}")
        return "\n".join(lines)

    def load(self, model: ModelRef, options: LoadOptions) -> Any:
        import torch

        # Thread pools must be sized before any parallel work starts in this process.
        if options.threads is not None:
            torch.set_num_threads(options.threads)
        torch.set_num_interop_threads(1)
        recipe = _RECIPES[options.variant]
        net = _module(torch, model)
        if options.device == "cuda":
            from ._torch_cuda import load_cuda

            return load_cuda(torch, net, model, recipe, options, variant(self, options.variant))
        if recipe.channels_last and not model.torch_program:  # a program's layout is fixed
            net = net.to(memory_format=torch.channels_last)
        call: Any = net
        if recipe.jit_freeze:
            from ..models.inputs import generate_all

            shapes = dict(options.shapes)
            session = _TorchSession(torch, net, model, recipe, {})
            example = session.prepare(generate_all(model.io, shapes))
            with torch.no_grad():
                call = torch.jit.freeze(torch.jit.trace(net, example, strict=False))
        elif recipe.int8:
            call = _pt2e_int8(torch, net, model, options)
        elif recipe.compile:
            import torch._inductor.config as inductor_config
            inductor_config.freezing = True
            call = torch.compile(net)
        info = {"variant": variant(self, options.variant).help,
                "num_threads": str(torch.get_num_threads()),
                "num_interop_threads": str(torch.get_num_interop_threads()),
                "mkldnn": str(torch.backends.mkldnn.is_available()),
                "autocast": "bf16" if recipe.bf16 else "off"}
        return _TorchSession(torch, call, model, recipe, info)
