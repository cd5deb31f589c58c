"""The gRPC side of the Open Inference Protocol: `inference.GRPCInferenceService`, with the
message classes tritonclient ships (the protocol's own .proto, compiled), so any v2 gRPC
client (tritonclient's among them) talks to it.  Tensors come as raw_input_contents or as
typed contents; outputs go back raw."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import numpy as np
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pb_grpc

from .. import __version__
from ..oip import ProtocolError, datatype, to_numpy
from .model import VERSION, ServedModel

_CONTENTS = {"BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents",
             "INT32": "int_contents", "INT64": "int64_contents", "UINT8": "uint_contents",
             "UINT16": "uint_contents", "UINT32": "uint_contents", "UINT64": "uint64_contents",
             "FP32": "fp32_contents", "FP64": "fp64_contents"}


def _inputs(request: Any) -> dict[str, np.ndarray]:
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise ProtocolError(f"{len(raw)} raw_input_contents for {len(request.inputs)} inputs")
    out = {}
    for i, t in enumerate(request.inputs):
        dt, shape = to_numpy(t.datatype), tuple(int(d) for d in t.shape)
        if any(d < 0 for d in shape):
            raise ProtocolError(f"tensor '{t.name}': negative dim in shape {list(shape)}")
        count = int(np.prod(shape, dtype=np.int64))
        if raw:
            if len(raw[i]) != count * dt.itemsize:
                raise ProtocolError(f"tensor '{t.name}': {len(raw[i])} bytes for shape "
                                    f"{list(shape)} of {t.datatype}")
            out[t.name] = np.frombuffer(raw[i], dt).reshape(shape)
        else:
            field = _CONTENTS.get(t.datatype)
            values = list(getattr(t.contents, field)) if field else []
            if len(values) != count:
                raise ProtocolError(f"tensor '{t.name}': {len(values)} values for shape "
                                    f"{list(shape)}")
            out[t.name] = np.asarray(values, dtype=dt).reshape(shape)
    return out


class Service(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, models: dict[str, ServedModel], timeout_s: float = 600.0) -> None:
        self.models, self.timeout_s = models, timeout_s

    def _model(self, name: str, version: str, context: Any) -> ServedModel:
        m = self.models.get(name)
        if m is None or version not in ("", VERSION):
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown model '{name}'; served: "
                          f"{', '.join(self.models)}")
        return m  # type: ignore[return-value]

    def ServerLive(self, request: Any, context: Any) -> Any:
        return pb.ServerLiveResponse(live=True)

    def ServerReady(self, request: Any, context: Any) -> Any:
        return pb.ServerReadyResponse(ready=all(m.ready for m in self.models.values()))

    def ModelReady(self, request: Any, context: Any) -> Any:
        m = self._model(request.name, request.version, context)
        return pb.ModelReadyResponse(ready=m.ready)

    def ServerMetadata(self, request: Any, context: Any) -> Any:
        return pb.ServerMetadataResponse(name="inferometer", version=__version__,
                                         extensions=["binary_tensor_data", "statistics"])

    def ModelMetadata(self, request: Any, context: Any) -> Any:
        m = self._model(request.name, request.version, context)

        def meta(t: Any) -> Any:
            return pb.ModelMetadataResponse.TensorMetadata(name=t.name, datatype=t.datatype,
                                                           shape=list(t.shape))
        return pb.ModelMetadataResponse(name=m.name, versions=[VERSION], platform=m.platform,
                                        inputs=[meta(t) for t in m.inputs],
                                        outputs=[meta(t) for t in m.outputs])

    def ModelInfer(self, request: Any, context: Any) -> Any:
        t0 = time.monotonic_ns()
        m = self._model(request.model_name, request.model_version, context)
        names = [t.name for t in m.outputs]
        try:
            inputs = _inputs(request)
            asked = [o.name for o in request.outputs]
            unknown = [o for o in asked if o not in names]
            if unknown:
                raise ProtocolError(f"unknown output(s) {', '.join(unknown)}")
            fut = m.submit(inputs)  # checks names, dtypes, shapes and the batch
        except ProtocolError as exc:
            m.fail(time.monotonic_ns() - t0)
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        served = fut.result(timeout=self.timeout_s)
        m.record(served, time.monotonic_ns() - t0)
        if served.error is not None or served.outputs is None:
            context.abort(grpc.StatusCode.INTERNAL, f"inference failed: {served.error}")
        resp = pb.ModelInferResponse(model_name=m.name, model_version=VERSION, id=request.id)
        for n in asked or names:
            a = served.outputs[n]
            resp.outputs.add(name=n, datatype=datatype(a.dtype), shape=list(a.shape))
            resp.raw_output_contents.append(np.ascontiguousarray(a).tobytes())
        return resp

    def ModelStatistics(self, request: Any, context: Any) -> Any:
        chosen = ([self._model(request.name, request.version, context)] if request.name
                  else list(self.models.values()))
        out = pb.ModelStatisticsResponse()
        for m in chosen:
            s = m.stats()
            st = out.model_stats.add(name=s["name"], version=s["version"],
                                     last_inference=s["last_inference"],
                                     inference_count=s["inference_count"],
                                     execution_count=s["execution_count"])
            for key, pair in s["inference_stats"].items():
                getattr(st.inference_stats, key).count = pair["count"]
                getattr(st.inference_stats, key).ns = pair["ns"]
        return out


def start(models: dict[str, ServedModel], host: str, port: int, workers: int = 32) -> Any:
    """A started gRPC server on host:port (stop it with .stop(grace))."""
    server = grpc.server(ThreadPoolExecutor(max_workers=workers),
                         options=[("grpc.max_receive_message_length", 256 << 20),
                                  ("grpc.max_send_message_length", 256 << 20),
                                  ("grpc.so_reuseport", 0)])
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(Service(models), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"gRPC could not bind {host}:{port}")
    server.start()
    return server
