"""What a worker needs to know about a model.  Light on purpose: workers may run in an
environment that holds only numpy, psutil and one runtime."""

from __future__ import annotations

from dataclasses import dataclass

from ..results.schema import ModelInfo, TensorInfo
from .io import INPUT_SEED, ModelIO


@dataclass(frozen=True)
class ModelRef:
    name: str
    onnx_path: str  # the ONNX form every runtime but the model's own framework starts from
    io: ModelIO
    # preprocessing of an image input on [0, 1] pixels: (x/255 - mean) / std
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    sha256: str
    torch_builder: str | None = None  # "module:function" for zoo models
    torch_weights: str | None = None  # state_dict saved next to the ONNX export
    # a torch.export program (.pt2) the user gave: PyTorch runs it, the rest its ONNX export
    torch_program: str | None = None
    # what int8 conversions calibrate on: uint8 NHWC images (.npy) for an image model, an
    # .npz of samples for any other; None: seeded images or generated inputs
    calibration: str | None = None
    # the user's input samples: ("", FILE.npz) with arrays named after the inputs, or
    # (input, FILE.npy) pairs; several samples are used round-robin
    data: tuple[tuple[str, str], ...] = ()
    # the dims int8 conversions calibrate at (a run's first value of each swept dim): one
    # calibration, hence one converted file, per model whatever the cells' shapes
    calibration_dims: tuple[tuple[str, int], ...] = ()
    # why the ONNX form is missing (the exporter's message); runtimes that need it say so
    onnx_error: str | None = None
    seed: int = INPUT_SEED  # of the generated inputs (--seed); images included

    def info(self) -> ModelInfo:
        """The description a results file stores."""
        source = ("zoo" if self.torch_builder else self.torch_program or self.onnx_path)
        return ModelInfo(
            self.name, source, self.sha256,
            inputs=tuple(TensorInfo(i.name, i.tensor.dtype, i.tensor.shape, i.values.kind,
                                    i.values.describe()) for i in self.io.inputs),
            outputs=tuple(TensorInfo(o.name, o.dtype, o.shape, o.kind) for o in self.io.outputs),
            batch_dim=self.io.batch_dim)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """C, H, W of the image input: for the runtimes and tools that take images only."""
        image = self.io.image
        if image is None:
            raise ValueError(f"model '{self.name}' has no single image input")
        c, h, w = image.tensor.shape[1:]
        return int(c), int(h), int(w)

    @property
    def input_name(self) -> str:
        return self.io.inputs[0].name

    @property
    def fixed_batch(self) -> int | None:
        return self.io.fixed_batch

    @property
    def output_kind(self) -> str:
        return self.io.outputs[0].kind if self.io.outputs else "tensor"


def onnx_missing(model: ModelRef) -> str | None:
    """Why a runtime that starts from the ONNX file cannot run `model` (None: the file is
    there): a .pt2 program whose export failed."""
    return f"no ONNX form of this model: {model.onnx_error}" if model.onnx_error else None
