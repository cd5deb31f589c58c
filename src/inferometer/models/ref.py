"""What a worker needs to know about a model.  Light on purpose: workers may run in an
environment that holds only numpy, psutil and one runtime."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelRef:
    name: str
    onnx_path: str
    input_name: str
    input_shape: tuple[int, int, int]  # C, H, W of one item (the ONNX input is NCHW float32)
    fixed_batch: int | None  # the file's batch dim when it is not dynamic
    mean: tuple[float, float, float]  # preprocessing on [0, 1] pixels: (x/255 - mean) / std
    std: tuple[float, float, float]
    output_kind: str  # "classes", "embedding" or "tensor"
    sha256: str
    torch_builder: str | None = None  # "module:function" for zoo models
    torch_weights: str | None = None  # state_dict saved next to the ONNX export
    # uint8 NHWC images (.npy) that int8 conversions calibrate on; None: seeded images
    calibration: str | None = None
