"""A model argument -> ModelRef: a zoo name (exported once, cached) or a path to an .onnx file."""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path

from ..errors import ModelError, RuntimeUnavailable, UsageError
from .ref import ModelRef
from .zoo import ZOO


def cache_dir() -> Path:
    env = os.environ.get("INFEROMETER_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "inferometer"


def write_cached(path: Path, data: bytes) -> None:
    """Write a cache file whole or not at all: two workers may build the same entry, and a
    killed one must not leave half a file that the next load would trust."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.",
                                     delete=False) as f:
        f.write(data)
    os.replace(f.name, path)


def resolve(arg: str, cache: Path | None = None) -> ModelRef:
    """A zoo name, an .onnx file, a torch.export program (.pt2) or a TorchScript module ->
    ModelRef.  Shapes, value ranges and data are bound afterwards (models.shapes)."""
    if arg in ZOO:
        if importlib.util.find_spec("torch") is None:
            raise RuntimeUnavailable(f"zoo model '{arg}' is exported from PyTorch, which is not "
                                     "installed: pip install torch==2.13.0")
        from .export import export_zoo_model
        return export_zoo_model(ZOO[arg], cache or cache_dir())
    if arg.endswith(".pt2"):
        if importlib.util.find_spec("torch") is None:
            raise RuntimeUnavailable(f"{arg} is a PyTorch program, and PyTorch is not "
                                     "installed: pip install torch==2.13.0")
        from .torchfile import inspect_program
        return inspect_program(Path(arg), cache or cache_dir())
    if arg.endswith((".pt", ".pth", ".ckpt")):
        from .torchscript import is_torchscript

        if Path(arg).is_file() and is_torchscript(Path(arg)):
            if importlib.util.find_spec("torch") is None:
                raise RuntimeUnavailable(f"{arg} is a TorchScript module, and PyTorch is not "
                                         "installed: pip install torch==2.13.0")
            from .torchscript import inspect_script
            return inspect_script(Path(arg), cache or cache_dir())
        raise ModelError(f"{arg}: pickled PyTorch files (torch.save) are not loaded "
                         "(unpickling runs arbitrary code); save the model with "
                         "torch.jit.trace + torch.jit.save, or torch.export.save as .pt2, or "
                         "export it to .onnx")
    if arg.endswith(".onnx") or os.sep in arg or Path(arg).exists():
        from .onnxfile import inspect_onnx
        return inspect_onnx(Path(arg))
    raise UsageError(f"unknown model '{arg}'; valid: {', '.join(ZOO)}, or a path to an .onnx "
                     "file, a .pt2 program or a traced TorchScript .pt")
