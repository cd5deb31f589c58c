"""`serve --engine triton`: the same ONNX Runtime session inside PyTriton's real tritonserver
answers tritonclient exactly as our own server does, on loopback only, and our load client
reads its statistics.  Needs `inferometer env create triton` (make test creates it)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import psutil
import pytest
from servers import env, free_port, serving

from inferometer import envs

pytestmark = pytest.mark.skipif(envs.load("triton") is None,
                                reason="no triton environment: inferometer env create triton")


def _answer(mod, port: int, x: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    client = mod.InferenceServerClient(f"127.0.0.1:{port}")
    inp = mod.InferInput("input", list(x.shape), "UINT8")
    inp.set_data_from_numpy(x)
    out = client.infer("tinynet", [inp]).as_numpy("output")
    client.close()
    return out


def test_triton_engine_answers_as_our_server_does(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import tritonclient.grpc as tg
    import tritonclient.http as th

    x = np.random.default_rng(3).integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)
    with serving(tmp_path / "ours", runtime="onnxruntime") as ours:
        want = _answer(th, ours.http, x)
    metrics = free_port()
    with serving(tmp_path / "triton", "--engine", "triton", "--metrics-port", str(metrics),
                 "--dynamic-batching", "max=4,delay=1ms", runtime="onnxruntime") as tri:
        status, meta = tri.get("/v2/models/tinynet")
        assert status == 200 and meta["inputs"][0]["datatype"] == "UINT8"
        assert meta["inputs"][0]["shape"][-3:] == [32, 32, 3]
        for mod, port in ((th, tri.http), (tg, tri.grpc)):
            assert np.allclose(_answer(mod, port, x), want, atol=1e-5), mod.__name__
        # everything Triton listens on is loopback
        server = next(p for p in psutil.Process(tri.proc.pid).children(recursive=True)
                      if p.name() == "tritonserver")
        addrs = {c.laddr.ip for c in server.net_connections("tcp")
                 if c.status == psutil.CONN_LISTEN}
        assert addrs and addrs <= {"127.0.0.1", "::ffff:127.0.0.1"}, addrs
        out = tmp_path / "lt"
        r = subprocess.run([sys.executable, "-m", "inferometer", "loadtest", "--target",
                            tri.url, "--concurrency", "2", "--window", "1s", "--output",
                            str(out)], capture_output=True, text=True, env=env(), timeout=300)
        assert r.returncode == 0, r.stderr
        step = json.loads((out / "results.json").read_text())["scan"][0]["step"]
        assert step["valid"] and step["errors"] == 0
        assert step["server"]["requests"] > 0 and step["server"]["compute_ms"] > 0
        kids = psutil.Process(tri.proc.pid).children(recursive=True)
    psutil.wait_procs(kids, timeout=30)
    assert not [k for k in kids if k.is_running() and k.status() != psutil.STATUS_ZOMBIE]
