"""benchmarks/serve_floor.py, the yardstick `serve_check.py --only overhead` sets serve against:
it must answer our client as a v2 server does, with the model's own output and the inference
its header states, and leave no process behind."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import psutil
from servers import Server, free_port, wait_ready

from inferometer.loadgen.remote import (
    Remote,
    parse_target,
    remote_model,
    request_feeds,
    server_timing,
)
from inferometer.models.resolve import resolve
from inferometer.oip import HEADER_LENGTH, decode_response
from inferometer.runtimes import LoadOptions, get

FLOOR = Path(__file__).resolve().parents[1] / "benchmarks" / "serve_floor.py"


def test_floor_answers_the_models_output_and_stops_clean() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/v2/models/tinynet"
    proc = subprocess.Popen([sys.executable, str(FLOOR), "tinynet", "--threads", "1",
                             "--port", str(port)], stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        wait_ready(Server(proc, port, 0, "tinynet"), 120, "the floor server")
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children, "no instance process"
        with Remote(parse_target(url), connections=1) as remote:
            model = remote_model(remote.target, remote.meta)
            feeds = request_feeds(model, 1, [])[:2]
            answers = []
            for feed in feeds:
                answer = remote.client.infer(remote.client.encode(feed))
                remote.client.check(answer)
                answers.append(answer)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    psutil.wait_procs(children, timeout=30)
    assert not [c for c in children if c.is_running()]
    ref = resolve("tinynet")
    session = get("onnxruntime")().load(ref, LoadOptions("default", 1, 1))
    for feed, (status, headers, body) in zip(feeds, answers, strict=True):
        assert status == 200
        out = decode_response(body, int(headers[HEADER_LENGTH.lower()]))["output"]
        # each request's own input was run (two different feeds give two different answers)
        np.testing.assert_allclose(out, session.run(session.prepare(dict(feed)))[0],
                                   rtol=1e-5, atol=1e-6)
        assert 0 < server_timing(headers)["compute_infer"] < 60_000
    assert not np.allclose(*(decode_response(b, int(h[HEADER_LENGTH.lower()]))["output"]
                             for _, h, b in answers))
