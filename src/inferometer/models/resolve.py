"""A model argument -> ModelRef: a zoo name (exported once, cached) or a path to an .onnx file."""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path

from ..errors import RuntimeUnavailable, UsageError
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


def resolve(arg: str, shape: tuple[int, int, int] | None = None,
            cache: Path | None = None) -> ModelRef:
    if arg in ZOO:
        if importlib.util.find_spec("torch") is None:
            raise RuntimeUnavailable(f"zoo model '{arg}' is exported from PyTorch, which is not "
                                     "installed: pip install torch==2.13.0")
        from .export import export_zoo_model
        return export_zoo_model(ZOO[arg], cache or cache_dir())
    if arg.endswith(".onnx") or os.sep in arg or Path(arg).exists():
        from .onnxfile import inspect_onnx
        return inspect_onnx(Path(arg), shape)
    raise UsageError(f"unknown model '{arg}'; valid: {', '.join(ZOO)} or a path to an .onnx file")
