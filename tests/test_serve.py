"""`inferometer serve`: the Open Inference Protocol over HTTP and gRPC, answered by the load
tests' instance processes; bad input, faults and shutdown.  The echo runtime computes each
item's answer from its input, so every answer is checked against its own request."""

from __future__ import annotations

import json
import signal
import threading
import time

import numpy as np
import pytest
from fake_runtimes import echo
from servers import serving

from inferometer.loadgen.remote import server_timing
from inferometer.oip import (
    HEADER_LENGTH,
    ProtocolError,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
)

pytestmark = pytest.mark.usefixtures("fakes")


def images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


# --- the codec --------------------------------------------------------------------------
@pytest.mark.parametrize("binary", [True, False])
def test_codec_round_trip(binary: bool) -> None:
    x = images(2)
    t = np.arange(6, dtype=np.int64).reshape(2, 3)
    body, hl = encode_request([("input", x), ("ids", t)], binary=binary)
    req = decode_request(body, hl)
    assert req.binary is binary and set(req.inputs) == {"input", "ids"}
    assert np.array_equal(req.inputs["input"], x) and req.inputs["ids"].dtype == np.int64
    out, hl = encode_response("m", "1", [("output", echo(x))], binary)
    assert np.array_equal(decode_response(out, hl)["output"], echo(x))


def test_a_repeated_header_is_read_from_its_plan_with_this_body_s_data() -> None:
    # load clients send one header over and over: the second is looked up, not parsed, and
    # must still give this body's tensors and refuse a body that does not fit the header
    from inferometer import oip

    oip._PLANS.clear()
    x, y = images(1, seed=1), images(1, seed=2)
    bx, hl = encode_request([("input", x)])
    by, hl_y = encode_request([("input", y)])
    assert hl == hl_y and bx[:hl] == by[:hl]
    assert np.array_equal(decode_request(bx, hl).inputs["input"], x)
    assert len(oip._PLANS) == 1
    second = decode_request(by, hl)
    assert np.array_equal(second.inputs["input"], y) and second.binary
    assert second.inputs["input"].shape == x.shape and second.inputs["input"].dtype == np.uint8
    with pytest.raises(ProtocolError, match="binary data"):
        decode_request(by[:-1], hl)
    json_body, _ = encode_request([("input", x)], binary=False)
    decode_request(json_body, len(json_body))
    assert len(oip._PLANS) == 1  # tensors in the JSON itself: nothing to plan


def test_a_repeated_response_header_keeps_each_answer_s_own_bytes() -> None:
    a, b = echo(images(1, seed=3)), echo(images(1, seed=4))
    ra, hla = encode_response("m", "1", [("output", a)], True, "r1")
    rb, hlb = encode_response("m", "1", [("output", b)], True, "r1")
    assert hla == hlb and ra[:hla] == rb[:hlb]
    assert np.array_equal(decode_response(rb, hlb)["output"], b)
    rc, hlc = encode_response("m", "1", [("output", b[:, ::2])], True, "r2")  # not contiguous
    assert json.loads(rc[:hlc])["id"] == "r2"
    assert np.array_equal(decode_response(rc, hlc)["output"], b[:, ::2])


@pytest.mark.parametrize("body,hl,says", [
    (b"{bad", None, "malformed JSON"),
    (b"[]", None, "JSON object"),
    (json.dumps({"inputs": [{"name": "x", "datatype": "BYTES", "shape": [1],
                             "data": ["a"]}]}).encode(), None, "not supported"),
    (json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [2],
                             "data": [1.0]}]}).encode(), None, "does not fit"),
    (json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [2],
                             "parameters": {"binary_data_size": 8}}]}).encode() + b"1234",
     None, "past the body"),
])
def test_codec_refuses_bad_requests(body: bytes, hl: int | None, says: str) -> None:
    if says == "past the body":  # the header says where the JSON ends
        hl = len(body) - 4
    with pytest.raises(ProtocolError, match=says):
        decode_request(body, hl)


# --- one server for the protocol tests ----------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from conftest import FAKES, TESTS

    mp = pytest.MonkeyPatch()
    mp.setenv("INFEROMETER_RUNTIMES", FAKES)
    mp.syspath_prepend(str(TESTS))
    with serving(tmp_path_factory.mktemp("serve"), "--max-batch", "4") as s:
        yield s
    mp.undo()


def test_metadata_describes_the_host_form(server) -> None:  # type: ignore[no-untyped-def]
    status, meta = server.get("/v2/models/tinynet")
    assert status == 200
    assert meta["inputs"] == [{"name": "input", "datatype": "UINT8", "shape": [-1, 32, 32, 3]}]
    # the class count is the model's, as Triton states it; only the batch is free
    assert meta["outputs"] == [{"name": "output", "datatype": "FP32", "shape": [-1, 10]}]
    status, srv = server.get("/v2")
    assert srv["name"] == "inferometer" and "statistics" in srv["extensions"]
    assert server.get("/v2/health/live")[1] == {"live": True}
    assert server.get("/v2/models/tinynet/ready")[1]["ready"] is True


def test_tritonclient_http_and_grpc_get_their_own_answers(server) -> None:  # type: ignore[no-untyped-def]
    import tritonclient.grpc as tg
    import tritonclient.http as th

    for mod, url in ((th, f"127.0.0.1:{server.http}"), (tg, f"127.0.0.1:{server.grpc}")):
        client = mod.InferenceServerClient(url)
        assert client.is_server_ready() and client.is_model_ready("tinynet")
        for n, seed in ((1, 1), (3, 2)):
            x = images(n, seed)
            inp = mod.InferInput("input", list(x.shape), "UINT8")
            inp.set_data_from_numpy(x)
            got = client.infer("tinynet", [inp]).as_numpy("output")
            assert np.array_equal(got, echo(x)), mod.__name__
        client.close()


def test_json_tensors_as_curl_sends_them(server) -> None:  # type: ignore[no-untyped-def]
    x = images(1, 5)
    body = json.dumps({"inputs": [{"name": "input", "datatype": "UINT8", "shape": [1, 32, 32, 3],
                                   "data": x.ravel().tolist()}]}).encode()
    status, headers, data = server.post("/v2/models/tinynet/infer", body,
                                        {"Content-Type": "application/json"})
    assert status == 200 and HEADER_LENGTH.lower() not in headers
    assert set(server_timing(headers)) == {"queue", "compute_infer"}
    out = json.loads(data)["outputs"][0]
    assert out["shape"] == [1, 10]
    assert np.allclose(np.array(out["data"], np.float32).reshape(1, 10), echo(x))


def _infer_json(name: str = "input", shape: tuple = (1, 32, 32, 3), dtype: str = "UINT8"
                ) -> bytes:
    n = int(np.prod(shape))
    return json.dumps({"inputs": [{"name": name, "datatype": dtype, "shape": list(shape),
                                   "data": [0] * n}]}).encode()


@pytest.mark.parametrize("path,body,status,says", [
    ("/v2/models/tinynet/infer", b"{not json", 400, "malformed JSON"),
    ("/v2/models/tinynet/infer", _infer_json(name="pixels"), 400, "unknown input"),
    ("/v2/models/tinynet/infer", _infer_json(shape=(1, 16, 16, 3)), 400, "shape"),
    ("/v2/models/tinynet/infer", _infer_json(dtype="FP32"), 400, "datatype"),
    ("/v2/models/tinynet/infer", _infer_json(shape=(5, 32, 32, 3)), 400, "outside 1..4"),
    ("/v2/models/resnet9000/infer", _infer_json(), 404, "unknown model"),
    ("/v2/models/..%2F..%2Fetc%2Fpasswd/infer", _infer_json(), 404, ""),
    ("/v2/models/tinynet/versions/7/infer", _infer_json(), 404, "version"),
])
def test_bad_requests_answer_an_error_and_the_server_goes_on(server, path, body, status,  # type: ignore[no-untyped-def]
                                                               says) -> None:
    code, _, data = server.post(path, body)
    assert code == status
    err = json.loads(data)["error"]
    assert says in err
    assert "root:" not in err  # nothing was read from disk by the name
    x = images(1)
    ok_body, hl = encode_request([("input", x)])
    code, headers, data = server.post("/v2/models/tinynet/infer", ok_body,
                                      {HEADER_LENGTH: str(hl)})
    assert code == 200
    assert np.array_equal(decode_response(data, int(headers[HEADER_LENGTH.lower()]))["output"],
                          echo(x))


def test_body_over_the_limit_is_413(server) -> None:  # type: ignore[no-untyped-def]
    code, _, data = server.post("/v2/models/tinynet/infer", b"x" * (8 << 20))
    assert code == 413 and "max-body" in json.loads(data)["error"]


def test_grpc_errors_carry_status_codes(server) -> None:  # type: ignore[no-untyped-def]
    import tritonclient.grpc as tg
    from tritonclient.utils import InferenceServerException

    client = tg.InferenceServerClient(f"127.0.0.1:{server.grpc}")
    x = np.zeros((1, 16, 16, 3), np.uint8)
    inp = tg.InferInput("input", list(x.shape), "UINT8")
    inp.set_data_from_numpy(x)
    with pytest.raises(InferenceServerException, match="shape"):
        client.infer("tinynet", [inp])
    with pytest.raises(InferenceServerException, match="unknown model"):
        client.infer("nope", [inp])
    assert client.is_server_live()


def test_statistics_and_metrics_count_what_happened(server) -> None:  # type: ignore[no-untyped-def]
    before = server.get("/v2/models/tinynet/stats")[1]["model_stats"][0]
    body, hl = encode_request([("input", images(2))])
    for _ in range(3):
        assert server.post("/v2/models/tinynet/infer", body, {HEADER_LENGTH: str(hl)})[0] == 200
    assert server.post("/v2/models/tinynet/infer", b"{bad")[0] == 400
    after = server.get("/v2/models/tinynet/stats")[1]["model_stats"][0]
    s0, s1 = before["inference_stats"], after["inference_stats"]
    assert s1["success"]["count"] - s0["success"]["count"] == 3
    assert s1["fail"]["count"] - s0["fail"]["count"] == 1
    assert after["inference_count"] - before["inference_count"] == 6  # items, not requests
    # the instance's call split as Triton splits it, each part counted for each request and
    # together inside the requests' own time
    parts = {k: (s1[k]["count"] - s0[k]["count"], s1[k]["ns"] - s0[k]["ns"])
             for k in ("compute_input", "compute_infer", "compute_output")}
    assert all(n == 3 and ns > 0 for n, ns in parts.values()), parts
    assert sum(ns for _, ns in parts.values()) < s1["success"]["ns"] - s0["success"]["ns"]
    text = server.get("/metrics")[1]["text"]
    assert 'nv_inference_request_success{model="tinynet",version="1"}' in text
    assert "nv_inference_compute_input_duration_us" in text
    assert "nv_inference_compute_output_duration_us" in text
    assert "inferometer_instances_live" in text


# --- faults and shutdown --------------------------------------------------------------------
def test_killed_instance_fails_its_request_and_is_replaced(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with serving(tmp_path / "logs", extra_env={"ECHO_SLEEP_MS": "1500"}) as server:
        body, hl = encode_request([("input", images(1))])
        result: dict = {}

        def ask() -> None:
            result["code"], _, result["body"] = server.post("/v2/models/tinynet/infer", body,
                                                            {HEADER_LENGTH: str(hl)})
        t = threading.Thread(target=ask)
        t.start()
        time.sleep(0.5)  # inside its 1.5 s call
        (victim,) = server.instances()
        victim.kill()
        t.join(timeout=30)
        assert not t.is_alive(), "the in-flight request hung"
        assert result["code"] == 500 and "failed" in json.loads(result["body"])["error"]
        code, _, _ = server.post("/v2/models/tinynet/infer", body, {HEADER_LENGTH: str(hl)})
        assert code == 200  # a new instance took its place
        (new,) = server.instances()
        assert new.pid != victim.pid
        metrics = server.get("/metrics")[1]["text"]
        assert 'inferometer_instance_restarts{model="tinynet",version="1"} 1' in metrics
        assert 'nv_inference_request_failure{model="tinynet",version="1"} 1' in metrics


def test_sigterm_drains_in_flight_requests_and_leaves_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with serving(tmp_path / "logs", "--instances", "2",
                 extra_env={"ECHO_SLEEP_MS": "1000"}) as server:
        kids = server.instances()
        assert len(kids) == 2
        x = images(1, 9)
        body, hl = encode_request([("input", x)])
        results: list = []

        def ask() -> None:
            t = time.monotonic()
            code, headers, data = server.post("/v2/models/tinynet/infer", body,
                                              {HEADER_LENGTH: str(hl)})
            results.append((code, data, headers, (time.monotonic() - t) * 1e3))
        threads = [threading.Thread(target=ask) for _ in range(2)]
        for t in threads:
            t.start()
        time.sleep(0.4)
        server.proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(timeout=30)
        assert server.proc.wait(timeout=60) == 0
        assert [r[0] for r in results] == [200, 200]
        for _code, data, headers, ms in results:
            out = decode_response(data, int(headers[HEADER_LENGTH.lower()]))["output"]
            assert np.array_equal(out, echo(x))
            # each answer says its own inference (the instance's 1 s sleep), inside its latency
            timing = server_timing(headers)
            assert 1000 <= timing["compute_infer"] < ms and 0 <= timing["queue"] < 500, timing
        assert all(not k.is_running() or k.status() == "zombie" for k in kids)


def test_dynamic_batching_in_serve_keeps_every_answer_with_its_request(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with serving(tmp_path / "logs", "--dynamic-batching", "max=4,delay=50ms",
                 extra_env={"ECHO_SLEEP_MS": "100"}) as server:
        xs = [images(1, 100 + k) for k in range(8)]
        answers: dict[int, np.ndarray] = {}

        def ask(k: int) -> None:
            body, hl = encode_request([("input", xs[k])])
            code, headers, data = server.post("/v2/models/tinynet/infer", body,
                                              {HEADER_LENGTH: str(hl)})
            assert code == 200
            answers[k] = decode_response(data, int(headers[HEADER_LENGTH.lower()]))["output"]
        threads = [threading.Thread(target=ask, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sorted(answers) == list(range(8))
        for k, out in answers.items():
            assert np.array_equal(out, echo(xs[k]))
        stats = server.get("/v2/models/tinynet/stats")[1]["model_stats"][0]
        sizes = {b["batch_size"] for b in stats["batch_stats"]}
        assert max(sizes) > 1 and stats["execution_count"] < 8


def test_serve_refuses_conflicting_flags(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from conftest import cli

    r = cli("serve", "tinynet", "--runtime", "echo", "--dynamic-batching", "max=8",
            "--max-batch", "4")
    assert r.returncode == 2 and "over --max-batch 4" in r.stderr
    r = cli("serve", "tinynet", "--from", str(tmp_path))
    assert r.returncode == 2 and "give neither" in r.stderr
    r = cli("serve", "--from", str(tmp_path))
    assert r.returncode == 2 and "no deploy.json" in r.stderr


def test_from_reads_what_tune_recommended(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import shutil
    from pathlib import Path

    from inferometer.advisor.advise import deploy
    from inferometer.results.store import load_result
    from inferometer.serve.server import from_deploy

    run_dir = tmp_path / "tune"
    run_dir.mkdir()
    shutil.copy(Path(__file__).parent / "golden" / "tune-v4.json", run_dir / "results.json")
    d = deploy(load_result(run_dir))
    (run_dir / "deploy.json").write_text(json.dumps(d))
    got = from_deploy(run_dir)
    c = load_result(run_dir).recommendation.candidate
    assert (got["model"], got["runtime"], got["variant"], got["instances"], got["threads"]) == \
        (d["model"], c.runtime, c.variant, c.instances, c.threads)
    assert got["batching"] is None if c.max_batch == 1 else got["batching"].max_batch == \
        c.max_batch
    # a layout with processes, pinned threads and batching, served as tune wrote it
    d.update(model="tinynet", runtime="echo", variant="default", instances=2,
             threads_per_instance=1, pin=True,
             dynamic_batching={"max_batch": 2, "delay_ms": 1.0})
    (run_dir / "deploy.json").write_text(json.dumps(d))
    (run_dir / "results.json").unlink()  # a zoo model: the name is enough
    with serving(tmp_path / "logs", model="tinynet", runtime="", from_run=run_dir) as s:
        assert len(s.instances()) == 2
        assert all(len(p.cpu_affinity()) == 1 for p in s.instances())
        body, hl = encode_request([("input", images(2))])
        assert s.post("/v2/models/tinynet/infer", body, {HEADER_LENGTH: str(hl)})[0] == 200
        assert s.get("/v2/models/tinynet")[1]["inputs"][0]["shape"][0] == -1
