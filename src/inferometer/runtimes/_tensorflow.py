"""TensorFlow (SavedModel) and LiteRT (TFLite), both from onnx2tf's conversion of the same ONNX
export, so integrity is comparable.  onnx2tf hard-pins tensorflow, numpy, onnx and LiteRT, so
both live in the `tensorflow` environment.  onnx2tf converts to NHWC: the input is the
normalised uint8 batch without a transpose.

onnx2tf tries to download a calibration sample for 3-channel image inputs; the conversion
writes a local file of that name first, so it never touches the network.  int8 files are
calibrated on the model's calibration images: the dataset's, in accuracy runs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..models.preprocess import Normalizer, calibration_images
from ..models.ref import ModelRef, image_only
from ..models.resolve import cache_dir
from ._onnx_edit import inline_constant_identities
from .base import Availability, LoadOptions, Variant, image_batch, installed

_ONNX2TF_SAMPLE = "calibration_image_sample_data_20x128x128x3_float32.npy"
# tflite variant -> (file written by onnx2tf, needs the int8 conversion)
_TFLITE = {"fp32": ("model_float32.tflite", False), "fp16": ("model_float16.tflite", False),
           "dynamic_int8": ("model_dynamic_range_quant.tflite", True),
           "int8": ("model_full_integer_quant.tflite", True)}


def _out_dir(model: ModelRef, int8: bool) -> Path:
    kind = f"int8-{calibration_images(model)[1]}" if int8 else "float"
    return cache_dir() / "converted" / "onnx2tf" / f"{model.sha256[:16]}-{kind}"


def convert_onnx2tf(model: ModelRef, int8: bool) -> str:
    out = _out_dir(model, int8)
    if (out / "saved_model.pb").exists():
        return f"cached in {out}"
    import onnx
    import onnx2tf

    t0 = time.monotonic()
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=out.parent))
    cwd = os.getcwd()
    try:
        os.chdir(work)  # onnx2tf looks for its calibration sample in the working directory
        rng = np.random.default_rng(0)
        np.save(_ONNX2TF_SAMPLE, rng.random((20, 128, 128, 3), dtype=np.float32))
        kwargs: dict[str, Any] = {}
        if int8:
            calib = calibration_images(model)[0].astype(np.float32) / 255.0
            np.save("calibration.npy", calib)
            kwargs = {"output_integer_quantized_tflite": True,
                      "custom_input_op_name_np_data_path": [[
                          model.input_name, "calibration.npy",
                          np.asarray(model.mean, np.float32).reshape(1, 1, 1, 3),
                          np.asarray(model.std, np.float32).reshape(1, 1, 1, 3)]]}
        # onnx2tf names its .tflite files after the file's stem, and the loader expects
        # model_*.tflite: convert from work/model.onnx whatever the user's file was called.
        # (Handing it the ModelProto instead skips the simplification its layout passes need.)
        graph = onnx.load(model.onnx_path)
        inline_constant_identities(graph)
        big = Path(model.onnx_path).stat().st_size > 1 << 30  # protobuf stops at 2 GB
        onnx.save(graph, "model.onnx", save_as_external_data=big)
        onnx2tf.convert(input_onnx_file_path="model.onnx", output_folder_path="out",
                        output_signaturedefs=True, non_verbose=True, **kwargs)
        with contextlib.suppress(OSError):  # another worker converted it meanwhile
            (work / "out").rename(out)
    finally:
        os.chdir(cwd)
        shutil.rmtree(work, ignore_errors=True)
    return f"converted by onnx2tf in {time.monotonic() - t0:.1f} s"


class _TfSession:
    def __init__(self, tf: Any, fn: Any, model: ModelRef, info: dict[str, str]) -> None:
        self._tf = tf
        self._fn = fn
        self._norm = Normalizer.of(model)
        self._info = info

    def prepare(self, inputs: Mapping[str, np.ndarray]) -> Any:
        batch = image_batch(inputs)
        return self._tf.constant(self._norm.nhwc(batch))

    def run(self, feed: Any) -> Sequence[np.ndarray]:
        return [self._fn(feed).numpy()]  # .numpy() waits for the result

    def info(self) -> dict[str, str]:
        return self._info

    def close(self) -> None:
        self._fn = None


class TensorFlow:
    name: ClassVar[str] = "tensorflow"
    environment: ClassVar[str] = "tensorflow"
    variants: ClassVar[tuple[Variant, ...]] = (
        Variant("default", "fp32", "SavedModel signature in tf.function"),
        Variant("xla", "fp32", "tf.function(jit_compile=True)"))
    default_variants: ClassVar[tuple[str, ...]] = ("default",)
    precisions: ClassVar[dict[str, str]] = {"fp32": "default"}

    def available(self) -> Availability:
        return installed("tensorflow", ("tensorflow", "tensorflow-cpu"),
                         "inferometer env create tensorflow")

    def version(self) -> str:
        import tensorflow as tf
        return tf.__version__

    def supports(self, model: ModelRef) -> str | None:
        return image_only(model, self.name)

    def convert(self, model: ModelRef, variant: str) -> str:
        return convert_onnx2tf(model, int8=False)

    def load(self, model: ModelRef, options: LoadOptions) -> _TfSession:
        import tensorflow as tf

        if options.threads is not None:  # before any op runs in this process
            tf.config.threading.set_intra_op_parallelism_threads(options.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        loaded = tf.saved_model.load(str(_out_dir(model, False)))
        sig = loaded.signatures["serving_default"]
        arg = next(iter(sig.structured_input_signature[1]))
        out_key = next(iter(sig.structured_outputs))

        @tf.function(jit_compile=options.variant == "xla")
        def call(x: Any) -> Any:
            return sig(**{arg: x})[out_key]

        info = {"intra_op": str(tf.config.threading.get_intra_op_parallelism_threads()),
                "inter_op": "1", "xla": str(options.variant == "xla"), "signature": arg}
        return _TfSession(tf, call, model, info)


class _LiteSession:
    def __init__(self, interp: Any, model: ModelRef, info: dict[str, str]) -> None:
        self._interp = interp
        self._norm = Normalizer.of(model)
        self._in = interp.get_input_details()[0]
        self._out = interp.get_output_details()[0]
        self._info = info

    def prepare(self, inputs: Mapping[str, np.ndarray]) -> Any:
        batch = image_batch(inputs)
        x = self._norm.nhwc(batch)
        scale, zero = self._in["quantization"]
        if self._in["dtype"] != np.float32:  # full-integer model: quantise the input here
            info = np.iinfo(self._in["dtype"])
            x = np.clip(np.round(x / scale + zero), info.min, info.max).astype(self._in["dtype"])
        return x

    def run(self, feed: Any) -> Sequence[np.ndarray]:
        self._interp.set_tensor(self._in["index"], feed)
        self._interp.invoke()
        y = self._interp.get_tensor(self._out["index"])
        scale, zero = self._out["quantization"]
        if self._out["dtype"] != np.float32:
            y = (y.astype(np.float32) - zero) * scale
        return [y]

    def info(self) -> dict[str, str]:
        return self._info

    def close(self) -> None:
        self._interp = None


class LiteRT:
    name: ClassVar[str] = "tflite"
    environment: ClassVar[str] = "tensorflow"
    variants: ClassVar[tuple[Variant, ...]] = (
        Variant("fp32", "fp32", "float32 .tflite, XNNPACK"),
        Variant("fp16", "fp16", "float16 weights .tflite"),
        Variant("dynamic_int8", "int8", "dynamic-range int8 weights"),
        Variant("int8", "int8", "full integer quantisation, int8 in/out"))
    default_variants: ClassVar[tuple[str, ...]] = ("fp32",)
    precisions: ClassVar[dict[str, str]] = {"fp32": "fp32", "fp16": "fp16", "int8": "int8"}

    def available(self) -> Availability:
        return installed("ai_edge_litert", ("ai-edge-litert",), "inferometer env create tensorflow")

    def version(self) -> str:
        import importlib.metadata
        return importlib.metadata.version("ai-edge-litert")

    def supports(self, model: ModelRef) -> str | None:
        return image_only(model, self.name)

    def convert(self, model: ModelRef, variant: str) -> str:
        return convert_onnx2tf(model, int8=_TFLITE[variant][1])

    def load(self, model: ModelRef, options: LoadOptions) -> _LiteSession:
        from ai_edge_litert.interpreter import Interpreter

        file, int8 = _TFLITE[options.variant]
        path = _out_dir(model, int8) / file
        interp = Interpreter(model_path=str(path), num_threads=options.threads)
        idx = interp.get_input_details()[0]["index"]
        interp.resize_tensor_input(idx, [options.batch, *model.input_shape[1:],
                                         model.input_shape[0]])
        interp.allocate_tensors()
        info = {"file": file, "num_threads": str(options.threads or "default"),
                "input_dtype": str(interp.get_input_details()[0]["dtype"].__name__)}
        return _LiteSession(interp, model, info)


# zoo name -> keras.applications constructor (same architecture family, Keras's own weights)
_KERAS = {"resnet50": "ResNet50", "vgg16": "VGG16", "mobilenet_v2": "MobileNetV2",
          "inception_v3": "InceptionV3"}


class Keras:
    """Keras 3 `keras.applications` models, built natively (not converted).  Their weights
    are Keras's own seeded init, not the zoo's, so outputs cannot be compared: integrity is
    n/a, said in the cell.  Keras's ResNet50 is v1 (stride on the 1x1 conv), the zoo's v1.5."""

    name: ClassVar[str] = "keras"
    environment: ClassVar[str] = "tensorflow"
    integrity_note: ClassVar[str] = "n/a: keras.applications weights differ from the zoo's"
    variants: ClassVar[tuple[Variant, ...]] = (
        Variant("function", "fp32", "model wrapped in tf.function"),
        Variant("eager", "fp32", "model(x) called eagerly"))
    default_variants: ClassVar[tuple[str, ...]] = ("function",)

    def available(self) -> Availability:
        return installed("keras", ("keras",), "inferometer env create tensorflow")

    def version(self) -> str:
        import keras
        return keras.__version__

    def supports(self, model: ModelRef) -> str | None:
        if model.name not in _KERAS or model.torch_builder is None:
            return f"keras.applications has no counterpart; keras runs {', '.join(_KERAS)}"
        return None

    def load(self, model: ModelRef, options: LoadOptions) -> _TfSession:
        import keras
        import tensorflow as tf

        if options.threads is not None:
            tf.config.threading.set_intra_op_parallelism_threads(options.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        keras.utils.set_random_seed(0)
        c, h, w = model.input_shape
        net = getattr(keras.applications, _KERAS[model.name])(weights=None,
                                                              input_shape=(h, w, c))
        fn = tf.function(net) if options.variant == "function" else net
        info = {"keras_backend": keras.backend.backend(), "call": options.variant,
                "intra_op": str(tf.config.threading.get_intra_op_parallelism_threads()),
                "weights": "keras seeded init (not the zoo's)"}
        return _TfSession(tf, lambda x: fn(x, training=False), model, info)
