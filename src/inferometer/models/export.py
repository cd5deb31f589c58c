"""Zoo model -> deterministic weights -> ONNX, once, cached under a content-hash key.

Seeded default init gives logits with a huge spread, which makes top-1 integrity checks
meaningless and overflows fp16.  So the weights are calibrated on one seeded batch: BatchNorm
statistics are recomputed in train mode (then eval), and BN-free models have each Conv/Linear
rescaled to unit output spread in a single pass.  Logits then have std ~1 and small top-1
margins, which makes top-1 agreement a strict test.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

from .io import ModelIO
from .preprocess import make_images
from .ref import ModelRef
from .zoo import ZooEntry

SEED = 0
OPSET = 17
_CALIBRATION_BATCH = 8
_RECIPE_VERSION = 1  # bump when the weight recipe or export settings change


def file_sha256(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_key(entry: ZooEntry, torch_version: str) -> str:
    module = importlib.import_module(entry.builder.partition(":")[0])
    h = hashlib.sha256()
    for part in (entry.builder, inspect.getsource(module), inspect.getsource(_calibrate),
                 entry.trainer, SEED, OPSET, _RECIPE_VERSION, torch_version, entry.io,
                 _transformers_version(entry)):
        h.update(str(part).encode())
    return h.hexdigest()[:16]


def _transformers_version(entry: ZooEntry) -> str:
    if ".hf:" not in entry.builder:
        return ""
    import importlib.metadata

    return importlib.metadata.version("transformers")


def _calibrate(net, entry: ZooEntry) -> None:  # type: ignore[no-untyped-def]
    import torch
    from torch import nn

    from .preprocess import Normalizer

    imgs = make_images(_CALIBRATION_BATCH, *entry.input_shape[1:], seed=SEED + 1)
    x = torch.from_numpy(Normalizer(entry.mean, entry.std).nchw(imgs))
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    with torch.no_grad():
        if bns:
            for bn in bns:
                bn.reset_running_stats()
                bn.momentum = None  # cumulative average: exactly this batch's statistics
            net.train()
            net(x)
            net.eval()
            return
        net.eval()

        def rescale(mod: nn.Module, inp: tuple, out: torch.Tensor) -> torch.Tensor:
            s = out.std().clamp_min(1e-6)
            mod.weight.div_(s)
            if mod.bias is not None:
                mod.bias.div_(s)
            return out / s

        hooks = [m.register_forward_hook(rescale) for m in net.modules()
                 if isinstance(m, (nn.Conv2d, nn.Linear))]
        net(x)
        for h in hooks:
            h.remove()


def _ref(entry: ZooEntry, directory: Path, sha: str) -> ModelRef:
    return ModelRef(name=entry.name, onnx_path=str(directory / "model.onnx"), io=entry.io,
                    mean=entry.mean, std=entry.std, sha256=sha, torch_builder=entry.builder,
                    torch_weights=str(directory / "weights.pt"))


def export_onnx(net: Any, io: ModelIO, path: Path) -> None:
    """A module taking `io`'s inputs positionally -> ONNX at `path`, every symbolic dim
    dynamic (TorchScript exporter: the one that handles these models on torch 2.13 in
    seconds)."""
    import torch

    from .inputs import generate_all

    shapes = io.bind(1, {})
    example = generate_all(io, shapes)
    args = tuple(torch.from_numpy(_model_form(i, example[i.name])) for i in io.inputs)
    axes = {t.name: {k: d for k, d in enumerate(t.shape) if isinstance(d, str)}
            for t in (*(i.tensor for i in io.inputs), *io.outputs)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, args, str(path), opset_version=OPSET, dynamo=False,
                          input_names=[i.name for i in io.inputs],
                          output_names=[o.name for o in io.outputs],
                          dynamic_axes={k: v for k, v in axes.items() if v})


def _model_form(inp: Any, host: Any) -> Any:
    import numpy as np

    if inp.is_image:  # uint8 NHWC -> float NCHW; the values do not matter for tracing
        return np.ascontiguousarray(host.transpose(0, 3, 1, 2), dtype=np.float32)
    return host


def export_zoo_model(entry: ZooEntry, cache_dir: Path) -> ModelRef:
    """The cached export for `entry`, created on first use (atomically: a half-written export
    is never visible, and two concurrent exports cannot corrupt each other)."""
    import torch

    root = cache_dir / "models"
    final = root / f"{entry.name}-{cache_key(entry, torch.__version__)}"
    meta = final / "meta.json"
    if meta.exists():
        return _ref(entry, final, json.loads(meta.read_text())["sha256"])
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}-", dir=root))
    try:
        torch.manual_seed(SEED)
        module, _, fn = entry.builder.partition(":")
        net = getattr(importlib.import_module(module), fn)()
        net.eval()
        if entry.trainer:  # real weights: trained on real data (the digits net)
            tmod, _, tfn = entry.trainer.partition(":")
            getattr(importlib.import_module(tmod), tfn)(net, entry.mean, entry.std)
        elif entry.calibrate:
            _calibrate(net, entry)
        torch.save(net.state_dict(), tmp / "weights.pt")
        export_onnx(net, entry.io, tmp / "model.onnx")
        sha = file_sha256(tmp / "model.onnx")
        (tmp / "meta.json").write_text(json.dumps({"sha256": sha, "torch": torch.__version__,
                                                   "opset": OPSET, "seed": SEED}))
        try:
            tmp.rename(final)
        except OSError:  # another process won the race: use its export
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _ref(entry, final, json.loads(meta.read_text())["sha256"])
