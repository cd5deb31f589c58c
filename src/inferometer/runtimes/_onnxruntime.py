"""ONNX Runtime, CPU execution provider."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np

from ..models.preprocess import ModelArrays
from ..models.ref import ModelRef, onnx_missing
from ..models.resolve import cache_dir
from ._onnx_precision import int8_path, quantize_dynamic_int8, quantize_int8
from .base import Availability, LoadOptions, Variant, installed

_LEVELS = {"default": "ORT_ENABLE_ALL", "extended": "ORT_ENABLE_EXTENDED",
           "basic": "ORT_ENABLE_BASIC", "disabled": "ORT_DISABLE_ALL"}


class _OrtSession:
    def __init__(self, sess: Any, model: ModelRef, info: dict[str, str]) -> None:
        self._sess = sess
        self._arrays = ModelArrays(model)
        self._info = info

    def prepare(self, inputs: Mapping[str, np.ndarray]) -> Any:
        return self._arrays(inputs)

    def run(self, feed: Any) -> Sequence[np.ndarray]:
        return self._sess.run(None, feed)

    def info(self) -> dict[str, str]:
        return self._info

    def close(self) -> None:
        self._sess = None


class _OrtBoundSession(_OrtSession):
    """ONNX Runtime on a device through IO binding, for the two GPU figures: `prepare`
    normalises on the host and copies the batch to the device, `run` runs on the bound input
    and copies the output back.  `run_with_iobinding` returns once the providers have
    synchronised (ORT's default), so the host clock around it alone is the device figure:
    compute and launches, without the two copies."""

    def __init__(self, sess: Any, model: ModelRef, info: dict[str, str],
                 device: str = "cuda") -> None:
        super().__init__(sess, model, info)
        self._device = device
        self._binding = sess.io_binding()
        self._outputs = [o.name for o in sess.get_outputs()]
        self._device_ns: list[int] = []

    def prepare(self, inputs: Mapping[str, np.ndarray]) -> Any:
        import onnxruntime as ort

        return {k: ort.OrtValue.ortvalue_from_numpy(v, self._device, 0)
                for k, v in self._arrays(inputs).items()}

    def run(self, feed: Any) -> Sequence[np.ndarray]:
        binding = self._binding
        for name, value in feed.items():
            binding.bind_ortvalue_input(name, value)
        for name in self._outputs:
            binding.bind_output(name, self._device)
        t0 = time.perf_counter_ns()
        self._sess.run_with_iobinding(binding)
        self._device_ns.append(time.perf_counter_ns() - t0)
        return binding.copy_outputs_to_cpu()

    def device_samples_ns(self) -> list[int]:
        return list(self._device_ns)

    def reset_device_samples(self) -> None:
        self._device_ns.clear()

    def device_memory_mb(self) -> dict[str, float]:
        from ..measure.gpu import nvml_memory_mb

        return nvml_memory_mb()


_GPU_VARIANTS = {"cuda": "fp32", "tensorrt": "fp32", "tensorrt_fp16": "fp16",
                 "tensorrt_int8": "int8"}


def gpu_providers(variant: str, cache: str) -> list[Any]:
    """Execution providers for a GPU variant, most preferred first.  TensorRT falls back to
    CUDA for nodes it cannot take (ORT's partitioning); its engines are cached, so only the
    first load pays for the build."""
    cuda = ("CUDAExecutionProvider", {"cudnn_conv_algo_search": "EXHAUSTIVE"})
    if variant == "cuda":
        return [cuda]
    # int8: TensorRT reads the scales from the QDQ model (explicit quantization: the
    # symmetric-int8 flavour of the calibrated file), so it needs no calibration cache.
    trt = {"trt_engine_cache_enable": "True", "trt_engine_cache_path": cache,
           "trt_fp16_enable": "True" if variant == "tensorrt_fp16" else "False",
           "trt_int8_enable": "True" if variant == "tensorrt_int8" else "False"}
    return [("TensorrtExecutionProvider", trt), cuda]


def _flavour(model: ModelRef, variant: str) -> str:
    """Which int8 `int8` means for this model: static QDQ calibrated on images for image
    models; dynamic for the rest, where static activation ranges from calibration data do not
    hold (BERT's hidden states at seq 384 failed integrity when calibrated at seq 128,
    docs/decisions.md), which is why dynamic int8 is the usual choice for transformers."""
    if variant == "int8_dynamic" or (variant == "int8" and not model.io.has_image):
        return "dynamic"
    return "tensorrt" if variant == "tensorrt_int8" else "cpu"


class OnnxRuntime:
    name: ClassVar[str] = "onnxruntime"
    variants: ClassVar[tuple[Variant, ...]] = (
        *(Variant(k, "fp32", f"graph optimization level {v}") for k, v in _LEVELS.items()),
        Variant("int8", "int8", "static int8 QDQ per-channel, calibrated, for image inputs; "
                "dynamic int8 (as int8_dynamic) for models without one"),
        Variant("int8_dynamic", "int8", "dynamic int8 (quantize_dynamic): int8 weights, "
                "activations quantised per run; no calibration (transformers on the CPU)"),
        Variant("cuda", "fp32", "CUDA execution provider", ("cuda",)),
        Variant("tensorrt", "fp32", "TensorRT execution provider (engine cached)", ("cuda",)),
        Variant("tensorrt_fp16", "fp16", "TensorRT execution provider, fp16 engine",
                ("cuda",)),
        Variant("tensorrt_int8", "int8", "TensorRT execution provider, int8 engine from the "
                "calibrated symmetric-int8 QDQ model", ("cuda",)))
    default_variants: ClassVar[tuple[str, ...]] = ("default", "cuda")
    precisions: ClassVar[dict[str, str]] = {"fp32": "default", "int8": "int8",
                                            "fp16": "tensorrt_fp16"}
    convert_variants: ClassVar[tuple[str, ...]] = ("int8", "int8_dynamic", "tensorrt_int8")

    def convert(self, model: ModelRef, variant: str) -> str:
        flavour = _flavour(model, variant)
        if flavour == "dynamic":
            return quantize_dynamic_int8(model)
        return quantize_int8(model, flavour)

    def available(self) -> Availability:
        return installed("onnxruntime", ("onnxruntime", "onnxruntime-openvino",
                                         "onnxruntime-gpu"), "pip install onnxruntime")

    def version(self) -> str:
        import onnxruntime
        return onnxruntime.__version__

    def supports(self, model: ModelRef) -> str | None:
        return onnx_missing(model)

    def device_unavailable(self, device: str) -> str | None:
        import importlib.metadata

        if device != "cuda":
            return None
        try:
            importlib.metadata.version("onnxruntime-gpu")
            return None
        except importlib.metadata.PackageNotFoundError:
            return ("the installed onnxruntime is CPU-only; its CUDA and TensorRT execution "
                    "providers come with: pip install onnxruntime-gpu")

    def deploy_snippet(self, variant: str, threads: int | None) -> str:
        """The session settings a cell of `variant` used, for a user's own server."""
        level = _LEVELS.get(variant, "ORT_ENABLE_ALL")
        lines = ["import onnxruntime as ort", "so = ort.SessionOptions()",
                 f"so.graph_optimization_level = ort.GraphOptimizationLevel.{level}",
                 "so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL",
                 "so.inter_op_num_threads = 1"]
        if threads is not None:
            lines.append(f"so.intra_op_num_threads = {threads}")
        if variant.startswith("int8"):
            lines.append("# the quantised file: inferometer's cache, converted/ (this variant)")
        lines.append('session = ort.InferenceSession("model.onnx", so, '
                     'providers=["CPUExecutionProvider"])')
        return "\n".join(lines)

    def load(self, model: ModelRef, options: LoadOptions) -> _OrtSession:
        if options.variant in _GPU_VARIANTS:
            cache = cache_dir() / "tensorrt"
            cache.mkdir(parents=True, exist_ok=True)
            if options.variant == "tensorrt_int8":
                model = replace(model, onnx_path=str(int8_path(model, "tensorrt")))
            return self._load(model, options, "ORT_ENABLE_ALL",
                              gpu_providers(options.variant, str(cache)),
                              {"timed": "end to end: host uint8 -> normalised on the host -> "
                                        "device (IO binding) -> output on host; device figure: "
                                        "run_with_iobinding alone (host clock, synchronised)"},
                              bound="cuda")
        if options.variant in ("int8", "int8_dynamic"):
            flavour = _flavour(model, options.variant)
            quantized = replace(model, onnx_path=str(int8_path(model, flavour)))
            return self._load(quantized, options, "ORT_ENABLE_ALL", ["CPUExecutionProvider"])
        return self._load(model, options, _LEVELS[options.variant], ["CPUExecutionProvider"])

    def _load(self, model: ModelRef, options: LoadOptions, level: str, providers: list,
              extra: dict[str, str] | None = None, bound: str | None = None) -> _OrtSession:
        """A session on `providers`; with `bound` (a device), inputs and outputs are bound
        there (IO binding) and the session reports device timings."""
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.inter_op_num_threads = 1
        if options.threads is not None:
            so.intra_op_num_threads = options.threads
        sess = ort.InferenceSession(model.onnx_path, so, providers=providers)
        wanted = providers[0] if isinstance(providers[0], str) else providers[0][0]
        if wanted not in sess.get_providers():
            # ORT falls back to the CPU provider silently; a mislabelled row is worse than none.
            raise RuntimeError(f"{wanted} is not available in this onnxruntime build "
                               f"(got {sess.get_providers()})")
        info = {"providers": ",".join(sess.get_providers()), "graph_optimization_level": level,
                "intra_op_num_threads": str(options.threads or "default"),
                "inter_op_num_threads": "1", "execution_mode": "ORT_SEQUENTIAL", **(extra or {})}
        if bound:
            return _OrtBoundSession(sess, model, info, bound)
        return _OrtSession(sess, model, info)


class OnnxRuntimeOpenVino(OnnxRuntime):
    """ONNX Runtime with the OpenVINO execution provider (today's form of ORT + nGraph).
    onnxruntime-openvino replaces onnxruntime's package directory, so it lives in its own
    environment."""

    name: ClassVar[str] = "onnxruntime_openvino"
    environment: ClassVar[str] = "onnxruntime-openvino"
    variants: ClassVar[tuple[Variant, ...]] = (
        Variant("fp32", "fp32", "OpenVINO EP, CPU, FP32"),
        Variant("bf16", "bf16", "OpenVINO EP, CPU, bf16 inference precision hint"))
    default_variants: ClassVar[tuple[str, ...]] = ("fp32",)
    precisions: ClassVar[dict[str, str]] = {"fp32": "fp32", "bf16": "bf16"}
    convert_variants: ClassVar[tuple[str, ...]] = ()

    def available(self) -> Availability:
        return installed("onnxruntime", ("onnxruntime-openvino",),
                         "inferometer env create onnxruntime-openvino")

    def load(self, model: ModelRef, options: LoadOptions) -> _OrtSession:
        # The EP's `precision` accepts only FP32/ACCURACY on CPU; bf16 goes through OpenVINO's
        # own property, passed with load_config.
        opts = {"device_type": "CPU", "precision": "FP32"}
        if options.variant == "bf16":
            opts["load_config"] = json.dumps({"CPU": {"INFERENCE_PRECISION_HINT": "bf16"}})
        if options.threads is not None:
            opts["num_of_threads"] = str(options.threads)
        return self._load(model, options, "ORT_ENABLE_ALL", [("OpenVINOExecutionProvider", opts)],
                          {f"openvino.{k}": v for k, v in opts.items()})
