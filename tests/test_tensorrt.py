"""Native TensorRT and the reduced-precision ONNX files both TensorRT paths build from.  What
needs no GPU runs here: the conversions (checked by running them on the CPU against fp32), the
engine build's calls to TensorRT (against a recording stand-in of its Python API), the engine
cache key and the selection.  Engines themselves build and run only on an NVIDIA GPU."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from inferometer.errors import UsageError
from inferometer.models.preprocess import Normalizer, make_images
from inferometer.plan import select_runtimes
from inferometer.runtimes import Availability
from inferometer.runtimes._onnx_precision import (
    convert_fp16,
    fp16_path,
    int8_path,
    quantize_int8,
    topological_sort,
)
from inferometer.runtimes._tensorrt import TensorRT, build_engine, engine_path


def _outputs(path: str | Path, model, n: int = 8) -> np.ndarray:  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    x = Normalizer.of(model).nchw(make_images(n, *model.input_shape[1:]))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {model.input_name: x})[0]


@pytest.fixture
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Conversions of this test only: another test may have cached the same files."""
    monkeypatch.setenv("INFEROMETER_CACHE", str(tmp_path))


def test_fp16_file_is_half_inside_float_at_the_edges(tiny, own_cache) -> None:  # type: ignore[no-untyped-def]
    assert "fp16 weights" in convert_fp16(tiny)
    assert convert_fp16(tiny).startswith("cached in")
    half = onnx.load(fp16_path(tiny))
    float_inits = [i for i in half.graph.initializer
                   if i.data_type in (TensorProto.FLOAT, TensorProto.FLOAT16)]
    assert float_inits and all(i.data_type == TensorProto.FLOAT16 for i in float_inits)
    edges = [*half.graph.input, *half.graph.output]
    assert all(t.type.tensor_type.elem_type == TensorProto.FLOAT for t in edges)
    onnx.checker.check_model(half)  # nodes in topological order, as TensorRT's parser needs
    ref, got = _outputs(tiny.onnx_path, tiny), _outputs(fp16_path(tiny), tiny)
    assert np.abs(got - ref).max() < 0.01 * np.abs(ref).max()
    assert (got.argmax(1) == ref.argmax(1)).all()


def test_int8_flavours(tiny, own_cache) -> None:  # type: ignore[no-untyped-def]
    def zero_points(path: Path) -> list[np.ndarray]:
        q = onnx.load(path)
        inits = {i.name: numpy_helper.to_array(i) for i in q.graph.initializer}
        return [inits[n.input[2]] for n in q.graph.node if n.op_type == "QuantizeLinear"]

    assert "symmetric int8 activations, Entropy" in quantize_int8(tiny, "tensorrt")
    assert "uint8 activations, MinMax" in quantize_int8(tiny, "cpu")
    trt, cpu = int8_path(tiny, "tensorrt"), int8_path(tiny, "cpu")
    assert trt != cpu
    # TensorRT takes only symmetric int8 Q/DQ: every zero point int8 and 0
    zps = zero_points(trt)
    assert zps and all(z.dtype == np.int8 and not z.any() for z in zps)
    assert all(z.dtype == np.uint8 for z in zero_points(cpu))
    ref, got = _outputs(tiny.onnx_path, tiny), _outputs(trt, tiny)
    # Close to fp32, item by item.  Not top-1: the seeded tiny net's logits are near each
    # other, and onnxruntime 1.32's entropy calibration (cosine 0.93-0.96 to fp32 here) flips
    # the argmax of 3 of these 8 images where earlier releases flipped at most 2; a broken
    # scale or zero point gives a cosine far below 0.9.
    cos = (ref * got).sum(1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(got, axis=1)
    assert cos.min() > 0.9, cos


def test_topological_sort() -> None:
    relu = helper.make_node("Relu", ["a"], ["b"])
    neg = helper.make_node("Neg", ["b"], ["c"])
    add = helper.make_node("Add", ["c", "b"], ["d"])
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1]) for n in "ad"]
    graph = helper.make_graph([add, neg, relu], "g", io[:1], io[1:])
    topological_sort(graph)
    assert [n.op_type for n in graph.node] == ["Relu", "Neg", "Add"]
    loop = helper.make_graph([helper.make_node("Neg", ["y"], ["x"]),
                              helper.make_node("Neg", ["x"], ["y"])], "g", [], [])
    with pytest.raises(ValueError, match="cycle"):
        topological_sort(loop)


class _FakeTrt:
    """Records the calls build_engine makes, shaped like TensorRT's Python API."""

    def __init__(self, strongly_typed: bool = True, parses: bool = True,
                 builds: bool = True,
                 inputs: tuple[tuple[str, tuple[int, ...]], ...] = (
                     ("input", (-1, 3, 224, 224)),)) -> None:
        self.calls: list[tuple[str, Any]] = []
        flags = {"STRONGLY_TYPED": 3} if strongly_typed else {}
        self.NetworkDefinitionCreationFlag = SimpleNamespace(**flags)
        self.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda s, level: None})
        trt = self

        class Builder:
            def __init__(self, logger: Any) -> None: ...

            def create_network(self, flags: int) -> Any:
                trt.calls.append(("create_network", flags))
                tensors = [SimpleNamespace(name=n, shape=s) for n, s in inputs]
                return SimpleNamespace(num_inputs=len(tensors), get_input=tensors.__getitem__)

            def create_builder_config(self) -> Any:
                return SimpleNamespace(add_optimization_profile=lambda p: trt.calls.append(
                    ("profile", tuple(p.shapes))))

            def create_optimization_profile(self) -> Any:
                profile = SimpleNamespace(shapes=[])

                def set_shape(name: str, lo: Any, opt: Any, hi: Any) -> None:
                    profile.shapes.append((name, lo, opt, hi))
                profile.set_shape = set_shape
                return profile

            def build_serialized_network(self, network: Any, config: Any) -> bytes | None:
                return b"plan" if builds else None

        class OnnxParser:
            num_errors = 0 if parses else 2

            def __init__(self, network: Any, logger: Any) -> None: ...

            def parse_from_file(self, path: str) -> bool:
                trt.calls.append(("parse", path))
                return parses

            def get_error(self, i: int) -> str:
                return f"error {i}"

        self.Builder, self.OnnxParser = Builder, OnnxParser


def test_build_engine_calls() -> None:
    trt = _FakeTrt()
    shape = (50, 3, 224, 224)
    assert build_engine(trt, Path("/m/fp16.onnx"), {"input": shape}) == b"plan"
    assert trt.calls == [("create_network", 1 << 3), ("parse", "/m/fp16.onnx"),
                         ("profile", (("input", shape, shape, shape),))]
    old = _FakeTrt(strongly_typed=False)  # a TensorRT before strong typing: no flag
    build_engine(old, Path("m.onnx"), {"input": shape})
    assert old.calls[0] == ("create_network", 0)
    with pytest.raises(RuntimeError, match=r"parser rejected m\.onnx: error 0; error 1"):
        build_engine(_FakeTrt(parses=False), Path("m.onnx"), {"input": shape})
    with pytest.raises(RuntimeError, match=r"built no engine from m\.onnx"):
        build_engine(_FakeTrt(builds=False), Path("m.onnx"), {"input": shape})


def test_build_engine_binds_every_dynamic_input() -> None:
    """A token model: each dynamic input gets its cell shape in the one profile; an input the
    file fixes gets none (TensorRT takes no profile for it), and no dynamic input, no
    profile."""
    tokens = (("input_ids", (-1, -1)), ("attention_mask", (-1, -1)), ("bias", (4,)))
    trt = _FakeTrt(inputs=tokens)
    cell = {"input_ids": (2, 128), "attention_mask": (2, 128), "bias": (4,)}
    build_engine(trt, Path("bert.onnx"), cell)
    assert trt.calls[-1] == ("profile", (("input_ids", (2, 128), (2, 128), (2, 128)),
                                         ("attention_mask", (2, 128), (2, 128), (2, 128))))
    fixed = _FakeTrt(inputs=(("x", (1, 8)),))
    build_engine(fixed, Path("f.onnx"), {"x": (1, 8)})
    assert [c for c in fixed.calls if c[0] == "profile"] == []
    with pytest.raises(RuntimeError, match="no shape for the engine's input 'attention_mask'"):
        build_engine(_FakeTrt(inputs=tokens), Path("bert.onnx"), {"input_ids": (2, 128)})


def test_engine_cache_key(tiny) -> None:  # type: ignore[no-untyped-def]
    a = engine_path(tiny, "fp16", 8, "10.13.0", "NVIDIA H100 80GB HBM3")
    assert a.name == f"{tiny.sha256[:16]}-fp16-b8-trt10.13.0-NVIDIA-H100-80GB-HBM3.engine"
    others = {engine_path(tiny, "fp16", 50, "10.13.0", "NVIDIA H100 80GB HBM3"),
              engine_path(tiny, "fp32", 8, "10.13.0", "NVIDIA H100 80GB HBM3"),
              engine_path(tiny, "fp16", 8, "11.0.0", "NVIDIA H100 80GB HBM3"),
              engine_path(tiny, "fp16", 8, "10.13.0", "NVIDIA H200")}
    assert a not in others and len(others) == 4
    # int8 engines follow the calibration images (their id is in the QDQ file's name)
    assert int8_path(tiny, "tensorrt").stem in engine_path(tiny, "int8", 8, "10", "g").name


def test_engine_cache_key_of_a_multi_input_model(tmp_path: Path) -> None:
    """Any model but a one-image one has an engine per cell shape: the key follows every
    input's shape, not the batch alone."""
    from onnx_models import two_input_model

    from inferometer.models.resolve import resolve

    two = resolve(str(two_input_model(tmp_path / "two.onnx")))
    at = {s: engine_path(two, "fp32", 2, "10", "g", {"x": (2, 8), "ids": (2, s)})
          for s in (128, 384)}
    assert at[128] != at[384] and "-static-" in at[128].name
    with pytest.raises(ValueError, match="the shapes are needed"):
        engine_path(two, "fp32", 2, "10", "g")
    assert TensorRT().supports(two) is None


@pytest.fixture
def trt_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TensorRT, "available", lambda self: Availability(True, "10.13.0"))


def test_selection(trt_installed: None, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UsageError, match="'tensorrt' cannot run on cpu: TensorRT runs on "
                                         "NVIDIA GPUs only"):
        select_runtimes("tensorrt", None, None, "cpu")
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version",
                        lambda d: "2.11.0+cu130" if d == "torch" else real(d))
    got = select_runtimes("tensorrt", None, "fp32,fp16,int8", "cuda")
    assert got[0].variants == ("fp32", "fp16", "int8")
    monkeypatch.setattr(importlib.metadata, "version",
                        lambda d: "2.13.0+cpu" if d == "torch" else real(d))
    with pytest.raises(UsageError, match="its device buffers come from PyTorch: this PyTorch "
                                         "is a CPU-only build"):
        select_runtimes("tensorrt", None, None, "cuda")


def test_not_installed_is_listed_with_the_install_command() -> None:
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("tensorrt is installed here")
    a = TensorRT().available()
    assert not a.available and a.reason == "python module 'tensorrt' not installed"
    assert a.install and a.install.startswith("pip install tensorrt")


def test_the_session_binds_every_input_and_output(tmp_path: Path) -> None:
    """The TensorRT session's own logic, against a stand-in engine and torch's CPU device
    (no GPU here): every input gets its cell shape and, at each run, the address of its feed
    tensor in the dtype the engine states (token ids as int32 here); outputs are allocated at
    the shapes the context reports and come back in the model's order."""
    import numpy as np
    import torch
    from onnx_models import two_input_model
    from test_devices import _torch_with_cuda_stood_in

    from inferometer.models.inputs import generate_all
    from inferometer.models.resolve import resolve
    from inferometer.runtimes._tensorrt import _TrtSession

    two = resolve(str(two_input_model(tmp_path / "two.onnx")))
    shapes = two.io.bind(2, {"seq": 16})
    dtypes = {"x": np.float32, "ids": np.int32, "embedded": np.float32, "logits": np.float32}
    out_shapes = {"embedded": (2, 16, 8), "logits": (2, 4)}
    calls: dict[str, Any] = {"shape": {}, "address": {}, "runs": 0}

    class Ctx:
        def set_input_shape(self, name: str, shape: tuple) -> None:
            calls["shape"][name] = tuple(shape)

        def get_tensor_shape(self, name: str) -> tuple:
            return out_shapes[name]

        def set_tensor_address(self, name: str, ptr: int) -> None:
            calls["address"][name] = ptr

        def execute_async_v3(self, stream: int) -> bool:
            calls["runs"] += 1
            return True

    # the engine lists its tensors in its own order: outputs first, inputs reversed
    names = ["embedded", "ids", "logits", "x"]
    engine = SimpleNamespace(
        num_io_tensors=len(names), get_tensor_name=names.__getitem__,
        get_tensor_mode=lambda n: "in" if n in ("x", "ids") else "out",
        get_tensor_dtype=lambda n: dtypes[n], create_execution_context=Ctx)
    class Trt:  # hashable, as the module is: the logger is cached per TensorRT module
        Logger = _FakeTrt().Logger
        TensorIOMode = SimpleNamespace(INPUT="in")

        @staticmethod
        def Runtime(logger: Any) -> Any:
            return SimpleNamespace(deserialize_cuda_engine=lambda plan: engine)

        @staticmethod
        def nptype(dtype: Any) -> Any:
            return dtype

    trt = Trt()
    fake = _torch_with_cuda_stood_in([])
    fake.cuda.Stream = lambda: SimpleNamespace(wait_stream=lambda s: None, cuda_stream=7)
    session = _TrtSession(fake, trt, b"plan", two, shapes, {}, device="cpu")
    assert calls["shape"] == {"x": (2, 8), "ids": (2, 16)}
    feed = session.prepare(generate_all(two.io, shapes))
    assert [t.dtype for t in feed] == [torch.float32, torch.int32]
    logits, embedded = session.run(feed)
    assert calls["runs"] == 1
    assert calls["address"]["x"] == feed[0].data_ptr()
    assert calls["address"]["ids"] == feed[1].data_ptr()
    assert logits.shape == (2, 4) and embedded.shape == (2, 16, 8)
