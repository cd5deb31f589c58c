"""TensorFlow (SavedModel) and LiteRT (TFLite), both from onnx2tf's conversion of the same ONNX
export, so integrity is comparable.  onnx2tf hard-pins tensorflow, numpy, onnx and LiteRT, so
both live in the `tensorflow` environment.

A one-image model converts once, to NHWC: the input is the normalised uint8 batch without a
transpose.  Any other model converts per cell shape (`converts_per_shape`): onnx2tf traces a
graph once and, on dynamic dims, misplaces the axes of rank-3 activations ("Incompatible
shapes [2,16,5] vs. [2,5,16]"); with the inputs fixed, onnxsim folds the shape arithmetic and
the conversion is exact.  Those models keep their own layout (no NHWC transpose), and are fed
and read by name through the SavedModel signature (outputs `output_0..N` in model order).

onnx2tf tries to download a calibration sample for 3-channel image inputs; the conversion
writes a local file of that name first, so it never touches the network.  int8 files are
calibrated on the model's calibration images: the dataset's, in accuracy runs.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..models.preprocess import ModelArrays, Normalizer, calibration_images
from ..models.ref import ModelRef, onnx_missing
from ..models.resolve import cache_dir
from ._onnx_edit import Shapes, inline_constant_identities, static_graph
from .base import (
    Availability,
    LoadOptions,
    Variant,
    image_batch,
    installed,
    per_shape,
    per_shape_key,
    refuse_dynamic_batch,
)

_ONNX2TF_SAMPLE = "calibration_image_sample_data_20x128x128x3_float32.npy"
# tflite variant -> (file written by onnx2tf, needs the int8 conversion)
_TFLITE = {"fp32": ("model_float32.tflite", False), "fp16": ("model_float16.tflite", False),
           "dynamic_int8": ("model_dynamic_range_quant.tflite", True),
           "int8": ("model_full_integer_quant.tflite", True)}


def _out_dir(model: ModelRef, int8: bool, shapes: Shapes | None = None) -> Path:
    kind = per_shape_key(model, shapes) or (
        f"int8-{calibration_images(model)[1]}" if int8 else "float")
    return cache_dir() / "converted" / "onnx2tf" / f"{model.sha256[:16]}-{kind}"


def _converted(model: ModelRef, int8: bool, shapes: Shapes | None) -> Path:
    out = _out_dir(model, int8, shapes)
    if not (out / "saved_model.pb").exists():
        what = f" at {dict(shapes)}" if per_shape(model) and shapes else ""
        raise FileNotFoundError(f"{model.name} has no onnx2tf conversion{what} in {out} "
                                "(the runner converts before the cells)")
    return out


def convert_onnx2tf(model: ModelRef, int8: bool, shapes: Shapes | None = None) -> str:
    if int8 and per_shape(model):
        raise NotImplementedError(
            "int8 .tflite files are calibrated here on images only; this model's inputs "
            f"are {', '.join(i.tensor.text() for i in model.io.inputs)}")
    out = _out_dir(model, int8, shapes)
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
        if per_shape(model):
            graph = static_graph(model.onnx_path, shapes or {})
            # keep every activation input in the model's layout: NHWC is for images
            keep = [i.name for i in model.io.inputs if 3 <= len(i.tensor.shape) <= 5]
            if keep:
                kwargs["keep_ncw_or_nchw_or_ncdhw_input_names"] = keep
            # LiteRT's builtins have no Erf (a transformer's GELU): onnx2tf's polynomial
            # stand-in keeps the file to builtins, within 1e-6 of ONNX Runtime on tinybert
            kwargs["replace_to_pseudo_operators"] = ["erf"]  # lower case: compared as given
        else:
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
    at = f" at {_shape_text(shapes)}" if per_shape(model) and shapes else ""
    return f"converted by onnx2tf{at} in {time.monotonic() - t0:.1f} s"


def _shape_text(shapes: Shapes) -> str:
    return ", ".join(f"{k} {'x'.join(map(str, v))}" for k, v in shapes.items())


def _ordered(outputs: Sequence[str], model: ModelRef) -> list[str]:
    """The signature's outputs in the model's order.  onnx2tf keeps the ONNX names of some
    graphs and writes `output_0..N` (in the model's order) for others."""
    ours = [o.name for o in model.io.outputs]
    if set(ours) <= set(outputs):
        return ours
    numbered = [k for k in outputs if re.fullmatch(r"output_\d+", k)]
    if len(numbered) == len(outputs) == len(ours):
        return sorted(numbered, key=lambda k: int(k.rpartition("_")[2]))
    raise RuntimeError(f"the converted model's outputs {sorted(outputs)} do not map onto the "
                       f"model's {ours}")


class _TfSession:
    """A one-image model's call takes the NHWC batch; any other's takes the model arrays by
    name (`named`)."""

    def __init__(self, tf: Any, fn: Any, model: ModelRef, info: dict[str, str],
                 named: bool = False, keep: Any = None) -> None:
        self._tf = tf
        self._fn = fn
        self._keep = keep  # the loaded SavedModel: its variables die with it
        self._named = named
        self._norm = Normalizer.of(model)
        self._arrays = ModelArrays(model)
        self._info = info

    def prepare(self, inputs: Mapping[str, np.ndarray]) -> Any:
        if self._named:
            return {k: self._tf.constant(v) for k, v in self._arrays(inputs).items()}
        return self._tf.constant(self._norm.nhwc(image_batch(inputs)))

    def run(self, feed: Any) -> Sequence[np.ndarray]:
        return [y.numpy() for y in self._fn(feed)]  # .numpy() waits for the result

    def info(self) -> dict[str, str]:
        return self._info

    def close(self) -> None:
        self._fn = self._keep = None


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
        return onnx_missing(model)

    converts_per_shape = staticmethod(per_shape)

    def convert(self, model: ModelRef, variant: str, shapes: Shapes | None = None) -> str:
        return convert_onnx2tf(model, int8=False, shapes=shapes)

    def load(self, model: ModelRef, options: LoadOptions) -> _TfSession:
        import tensorflow as tf

        refuse_dynamic_batch(model, options, self.name)
        if options.threads is not None:  # before any op runs in this process
            tf.config.threading.set_intra_op_parallelism_threads(options.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        loaded = tf.saved_model.load(str(_converted(model, False, dict(options.shapes))))
        sig = loaded.signatures["serving_default"]
        args = list(sig.structured_input_signature[1])
        outs = _ordered(list(sig.structured_outputs), model)
        named = per_shape(model)
        if named and set(args) != {i.name for i in model.io.inputs}:
            raise RuntimeError(f"the converted model takes {args}, the ONNX file "
                               f"{[i.name for i in model.io.inputs]}")

        @tf.function(jit_compile=options.variant == "xla")
        def call(x: Any) -> Any:
            got = sig(**x) if named else sig(**{args[0]: x})
            return [got[k] for k in outs]

        info = {"intra_op": str(tf.config.threading.get_intra_op_parallelism_threads()),
                "inter_op": "1", "xla": str(options.variant == "xla"),
                "signature": ",".join(args)}
        if named:
            info["converted_at"] = _shape_text(dict(options.shapes))
        return _TfSession(tf, call, model, info, named=named, keep=loaded)


def _quantise(x: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    scale, zero = detail["quantization"]
    if not (scale and x.dtype.kind == "f" and detail["dtype"] != np.float32):
        return x.astype(detail["dtype"], copy=False)  # int64 ids may arrive as int32
    info = np.iinfo(detail["dtype"])  # full-integer model: quantise the input here
    return np.clip(np.round(x / scale + zero), info.min, info.max).astype(detail["dtype"])


def _dequantise(y: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    scale, zero = detail["quantization"]
    if detail["dtype"] == np.float32 or not scale:
        return y
    return (y.astype(np.float32) - zero) * scale


class _LiteSession:
    """Inputs and outputs by the signature's names where the file has one: the interpreter's
    own tensor names (`serving_default_x:0`, `PartitionedCall:1`) say nothing of the model's
    order."""

    def __init__(self, interp: Any, model: ModelRef, info: dict[str, str]) -> None:
        self._interp = interp
        self._named = per_shape(model)
        self._norm = Normalizer.of(model)
        self._arrays = ModelArrays(model)
        if "serving_default" in interp.get_signature_list():
            runner = interp.get_signature_runner("serving_default")
            self._in = runner.get_input_details()
            out = runner.get_output_details()
            self._out = [out[k] for k in _ordered(list(out), model)]
        else:  # onnx2tf's quantised files carry no signature: a one-image model's one output
            (detail,) = interp.get_input_details()
            self._in = {detail["name"]: detail}
            self._out = interp.get_output_details()[:1]
        self._info = info

    def prepare(self, inputs: Mapping[str, np.ndarray]) -> Any:
        if self._named:
            arrays = self._arrays(inputs)
        else:
            ((name, _),) = self._in.items()
            arrays = {name: self._norm.nhwc(image_batch(inputs))}
        return {k: _quantise(v, self._in[k]) for k, v in arrays.items()}

    def run(self, feed: Any) -> Sequence[np.ndarray]:
        for name, x in feed.items():
            self._interp.set_tensor(self._in[name]["index"], x)
        self._interp.invoke()
        return [_dequantise(self._interp.get_tensor(o["index"]), o) for o in self._out]

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
        return onnx_missing(model)

    converts_per_shape = staticmethod(per_shape)

    def convert(self, model: ModelRef, variant: str, shapes: Shapes | None = None) -> str:
        return convert_onnx2tf(model, int8=_TFLITE[variant][1], shapes=shapes)

    def load(self, model: ModelRef, options: LoadOptions) -> _LiteSession:
        from ai_edge_litert.interpreter import Interpreter

        refuse_dynamic_batch(model, options, self.name)
        file, int8 = _TFLITE[options.variant]
        path = _converted(model, int8, dict(options.shapes)) / file
        interp = Interpreter(model_path=str(path), num_threads=options.threads)
        if not per_shape(model):  # converted with a dynamic batch
            idx = interp.get_input_details()[0]["index"]
            interp.resize_tensor_input(idx, [options.batch, *model.input_shape[1:],
                                             model.input_shape[0]])
        interp.allocate_tensors()
        info = {"file": file, "num_threads": str(options.threads or "default"),
                "input_dtype": ",".join(sorted({d["dtype"].__name__
                                                for d in interp.get_input_details()}))}
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
        return _TfSession(tf, lambda x: [fn(x, training=False)], model, info)
