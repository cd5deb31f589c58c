"""Remote v2 targets: the engine's error accounting and concurrency mode (fake pools with
known latencies), then `loadtest`/`scan --target` against a real `inferometer serve`, and the
client-side faults: refused, not a v2 server, 5xx."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import cli
from servers import env, free_port, serving

from inferometer.errors import UsageError
from inferometer.loadgen import engine
from inferometer.loadgen.remote import parse_target


def test_parse_target_forms_and_refusals() -> None:
    t = parse_target("http://127.0.0.1:8000/v2/models/resnet50")
    assert (t.scheme, t.host, t.port, t.model, t.version) == ("http", "127.0.0.1", 8000,
                                                              "resnet50", "")
    assert parse_target("http://h:1/v2/models/m/versions/2").version == "2"
    g = parse_target("grpc://127.0.0.1:8001/resnet50")
    assert (g.scheme, g.port, g.model) == ("grpc", 8001, "resnet50")
    assert g.url == "grpc://127.0.0.1:8001/resnet50"
    for bad in ("127.0.0.1:8000", "http://h/v2/models/m", "ftp://h:1/m",
                "http://h:1/models/m"):
        with pytest.raises(UsageError, match="HOST:PORT"):
            parse_target(bad)


class FakePool:
    """Answers each query after `latency(qid)` seconds, in parallel (a server with unbounded
    capacity); queries in `fail` end in an error."""

    def __init__(self, latency: float = 0.005, fail: set[int] = frozenset(),  # type: ignore[assignment]
                 grow: float = 0.0) -> None:
        self.latency, self.fail, self.grow = latency, fail, grow
        self.t0 = time.monotonic()
        self.on_complete = self.on_start = self.on_error = None

    def submit(self, qid: int, n: int = 1) -> None:
        lat = self.latency * (1 + self.grow * (time.monotonic() - self.t0))

        def done() -> None:
            if qid in self.fail:
                self.on_error(qid, "HTTP 500: boom")  # type: ignore[misc]
            else:
                self.on_complete(qid, time.monotonic_ns())  # type: ignore[misc]
        threading.Timer(lat, done).start()


def test_server_step_counts_failed_requests_and_is_invalid() -> None:
    step, lat = engine.run_server(FakePool(fail={3, 7}), 200, "linear", duration_s=0.3,
                                  min_count=50)
    assert step.errors == 2 and not step.valid
    assert any("2 of" in r and "HTTP 500" in r for r in step.reasons)
    assert len(lat) == step.queries == 60 - 2


def test_concurrency_mode_keeps_n_in_flight_and_needs_stable_windows() -> None:
    one, _ = engine.run_concurrency(FakePool(0.01), 1, window_s=0.3, window_requests=10)
    four, _ = engine.run_concurrency(FakePool(0.01), 4, window_s=0.3, window_requests=10)
    assert one.valid and four.valid and one.windows >= 3
    assert one.concurrency == 1 and four.concurrency == 4
    # unbounded capacity: 4 in flight carry about 4x the throughput at the same latency
    assert 2.5 < four.achieved_qps / one.achieved_qps < 5.5
    assert 0.5 < four.mean_s / one.mean_s < 2.0


def test_concurrency_mode_says_when_it_never_settled() -> None:
    # latency that doubles every 0.3 s never gives 3 windows within 10%
    step, _ = engine.run_concurrency(FakePool(0.005, grow=3.0), 2, window_s=0.2,
                                     window_requests=5, max_windows=5)
    assert not step.valid and step.windows == 5
    assert any("not stable" in r for r in step.reasons)


def test_concurrency_mode_stops_on_errors() -> None:
    step, _ = engine.run_concurrency(FakePool(0.005, fail={20}), 2, window_s=0.2,
                                     window_requests=5)
    assert not step.valid and step.errors >= 1
    assert any("failed" in r for r in step.reasons)


# --- against a real `inferometer serve` -----------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    with serving(tmp_path_factory.mktemp("serve"), "--instances", "2",
                 extra_env={"ECHO_SLEEP_MS": "10"}) as s:
        yield s


def _run(*args: str, timeout: float = 600):  # type: ignore[no-untyped-def]
    import subprocess
    import sys
    return subprocess.run([sys.executable, "-m", "inferometer", *args], capture_output=True,
                          text=True, env=env(), timeout=timeout)


def test_loadtest_concurrency_against_serve_over_http(server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "lt"
    r = _run("loadtest", "--target", server.url, "--concurrency", "1,2", "--window", "1s",
             "--output", str(out))
    assert r.returncode == 0, r.stderr
    assert "infer/s" in r.stdout and "server compute ms" in r.stdout
    data = json.loads((out / "results.json").read_text())
    assert data["kind"] == "loadtest" and data["target"] == server.url
    steps = [s["step"] for s in data["scan"]]
    assert [s["concurrency"] for s in steps] == [1, 2]
    assert all(s["valid"] and s["errors"] == 0 and s["windows"] >= 3 for s in steps)
    # the server's own statistics sit beside the client's figures, and agree on the order
    for s in steps:
        assert s["server"]["requests"] > 0
        assert s["server"]["request_ms"] <= s["mean_s"] * 1e3 * 1.5
    # two instances: concurrency 2 carries more than concurrency 1 (wide margin)
    assert steps[1]["achieved_qps"] > 1.3 * steps[0]["achieved_qps"]
    shown = cli("show", str(out))
    assert shown.returncode == 0 and server.url in shown.stdout
    assert "concurrency 2" in shown.stdout
    exported = cli("export", str(out), "--format", "csv")
    assert exported.returncode == 0
    assert "server_compute_ms" in (out / "export.csv").read_text()
    same = cli("compare", str(out), str(out))  # a run against itself: nothing is called
    assert same.returncode == 0, same.stderr
    assert "concurrency 2: throughput" in same.stdout
    assert "better in B" not in same.stdout and "worse in B" not in same.stdout
    both = cli("compare", f"{out},{out}", f"{out},{out}")  # several runs a side: tested
    assert both.returncode == 0, both.stderr
    assert "2 vs 2 runs" in both.stdout and "no change beyond noise" in both.stdout
    as_json = cli("compare", f"{out},{out}", f"{out},{out}", "--json")
    assert as_json.returncode == 0, as_json.stderr
    rows = {r["measure"]: r for r in json.loads(as_json.stdout)["rows"]}
    thr = rows["concurrency 2: throughput"]
    assert len(thr["a_runs"]) == 2 and thr["ratio"] == pytest.approx(1.0)
    assert thr["difference"] == "no change beyond noise"


def _load_run(qps: dict[int, float], results: dict | None = None):  # type: ignore[no-untyped-def]
    from inferometer.results.loadrun import LoadRun, LoadStep, StepResult
    from inferometer.results.schema import ModelInfo

    steps = tuple(LoadStep("remote", StepResult(
        "concurrency", "closed-loop", 0.0, q, 100, 3.0, c / q, {"50": c / q, "99": 2 * c / q},
        0.0, None, True, (), concurrency=c)) for c, q in qps.items())
    return LoadRun(schema_version=4, kind="scan" if results else "loadtest", tool_version="x",
                   created="2026-12-02T00:00:00+00:00", command=(), machine={},
                   model=ModelInfo("m", "zoo", ""), runtime="triton", runtime_version="",
                   variant="", engine="native", check_accuracy="", results=results or {},
                   scan=steps, target="http://127.0.0.1:1/v2/models/m")


def _rows(text: str) -> dict[str, str]:
    return {ln.split("  ")[0]: ln for ln in text.splitlines()}


def test_load_compare_calls_nothing_on_one_run_a_side() -> None:
    """One run a side shows no between-run noise: even a third apart is not called (two
    identical load tests against one server gave p99s of 52.9 and 35.7 ms)."""
    from inferometer.report.loadcompare import load_comparison_text

    text = load_comparison_text([_load_run({1: 100.0, 4: 300.0})],
                                [_load_run({1: 104.0, 4: 400.0})], "A", "B")
    rows = _rows(text)
    assert "0.75" in rows["concurrency 4: p50 ms"]  # the figures are still shown
    for name in ("concurrency 1: throughput", "concurrency 4: throughput",
                 "concurrency 4: p99 ms"):
        assert "not tested: one run a side" in rows[name]
    assert "better in B" not in text and "worse in B" not in text
    assert "A1,A2,A3 B1,B2,B3" in text
    # a step some runs lack is named, not dropped unsaid
    text = load_comparison_text([_load_run({1: 100.0, 2: 150.0}), _load_run({1: 101.0})],
                                [_load_run({1: 99.0, 2: 140.0})], "A", "B")
    assert "not in every run, so not compared: concurrency 2" in text
    assert "concurrency 2: throughput" not in text
    scans = load_comparison_text([_load_run({}, {"remote": {"exponential": {"0.1": 20.0}}})],
                                 [_load_run({}, {"remote": {"exponential": {"0.1": 15.0}}})],
                                 "A", "B")
    assert "not tested" in scans and "worse in B" not in scans


def test_load_compare_tests_several_runs_a_side() -> None:
    from inferometer.report.loadcompare import load_comparison_text

    a = [_load_run({1: q1, 4: q4}) for q1, q4 in ((100, 300), (102, 305), (98, 296))]
    b = [_load_run({1: q1, 4: q4}) for q1, q4 in ((101, 400), (99, 404), (103, 397))]
    rows = _rows(load_comparison_text(a, b, "A", "B"))
    assert "no change beyond noise" in rows["concurrency 1: throughput"]
    assert "better in B" in rows["concurrency 4: throughput"]
    assert "better in B" in rows["concurrency 4: p50 ms"]  # 4/400 < 4/300: lower latency
    # identical runs spread by a third on each side: the same means do not make a change
    a = [_load_run({4: q}) for q in (300.0, 400.0, 350.0)]
    b = [_load_run({4: q}) for q in (260.0, 330.0, 300.0)]
    assert "no change beyond noise" in _rows(load_comparison_text(a, b, "A", "B"))[
        "concurrency 4: throughput"]

    def scan(q: float):  # type: ignore[no-untyped-def]
        return _load_run({}, {"remote": {"exponential": {"0.1": q}}})

    text = load_comparison_text([scan(20.0), scan(21.0), scan(19.5)],
                                [scan(15.0), scan(15.5), scan(14.5)], "A", "B")
    assert "worse in B" in text and "3 vs 3 runs" in text
    text = load_comparison_text([scan(-1.0)] * 3, [scan(12.0), scan(13.0), scan(12.5)],
                                "A", "B")
    assert "met only in B" in text and "met in 0 of 3" in text


def test_server_scenario_and_scan_over_grpc(server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    grpc_url = f"grpc://127.0.0.1:{server.grpc}/tinynet"
    r = _run("loadtest", "--target", grpc_url, "--qps", "40", "--arrivals", "exponential",
             "--duration", "2s", "--percentile", "90", "--targets", "500ms",
             "--output", str(tmp_path / "lt"))
    assert r.returncode == 0, r.stderr
    assert "VALID" in r.stdout and "INVALID" not in r.stdout
    r = _run("scan", "--target", server.url, "--targets", "200ms", "--arrivals", "linear",
             "--duration", "1s", "--percentile", "90", "--precision", "0.3",
             "--output", str(tmp_path / "scan"))
    assert r.returncode == 0, r.stderr
    final = [ln for ln in r.stdout.splitlines() if ln.startswith("===FINAL_RESULT:")]
    assert final, r.stdout
    answer = eval(final[0].split(":", 1)[1])  # the in-process scan's shape: {arrivals: {t: q}}
    assert answer["linear"]["0.2"] > 10


# --- client-side faults -------------------------------------------------------------------
def test_refused_connection_is_one_line() -> None:
    r = _run("loadtest", "--target", f"http://127.0.0.1:{free_port()}/v2/models/m",
             "--concurrency", "1")
    assert r.returncode == 2
    assert "connection refused" in r.stderr and "Traceback" not in r.stderr


class _Fake(BaseHTTPRequestHandler):
    """Either not a v2 server at all (HTML), or a v2 server whose inference fails."""

    mode = "html"

    def log_message(self, *a: object) -> None:
        pass

    def _send(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.mode == "html":
            self._send(200, b"<html>hello</html>", "text/html")
        elif self.mode == "v2-ints":  # an integer input its metadata says nothing more of
            self._send(200, json.dumps({"name": "m", "platform": "fake", "inputs": [
                {"name": "ids", "datatype": "INT64", "shape": [-1, 4]}], "outputs": []}
                ).encode(), "application/json")
        else:
            self._send(200, json.dumps({"name": "m", "platform": "fake", "inputs": [
                {"name": "x", "datatype": "FP32", "shape": [-1, 4]}], "outputs": [
                {"name": "y", "datatype": "FP32", "shape": [-1, 4]}]}).encode(),
                "application/json")

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.mode == "v2-slow":
            time.sleep(2.0)
        if self.mode == "v2-ok":
            self._send(200, json.dumps({"model_name": "m", "outputs": [
                {"name": "y", "datatype": "FP32", "shape": [1, 4], "data": [0.0] * 4}]}
                ).encode(), "application/json")
            return
        self._send(500, b'{"error": "the model crashed"}', "application/json")


@contextmanager
def fake_server(mode: str) -> Iterator[int]:
    handler = type("H", (_Fake,), {"mode": mode})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv.server_address[1]
    finally:
        srv.shutdown()


def test_a_target_that_is_not_a_v2_server_says_what_answered() -> None:
    with fake_server("html") as port:
        r = _run("loadtest", "--target", f"http://127.0.0.1:{port}/v2/models/m",
                 "--concurrency", "1")
    assert r.returncode == 2
    assert "not a v2 server" in r.stderr and "text/html" in r.stderr


def test_an_integer_input_the_server_does_not_describe_is_refused_naming_the_flag() -> None:
    with fake_server("v2-ints") as port:
        r = _run("loadtest", "--target", f"http://127.0.0.1:{port}/v2/models/m",
                 "--concurrency", "1")
    assert r.returncode == 2
    assert "the server's metadata does not state it" in r.stderr
    assert "--value-range ids:LOW,HIGH" in r.stderr


def test_server_errors_are_counted_and_make_the_run_invalid(tmp_path) -> None:
    with fake_server("v2-failing") as port:
        r = _run("loadtest", "--target", f"http://127.0.0.1:{port}/v2/models/m",
                 "--concurrency", "2", "--window", "0.5s", "--output", str(tmp_path / "x"))
    assert r.returncode == 1
    data = json.loads((tmp_path / "x" / "results.json").read_text())
    step = data["scan"][0]["step"]
    assert not step["valid"] and step["errors"] >= 1
    assert any("HTTP 500" in s and "the model crashed" in s for s in step["reasons"])


def test_a_request_past_its_timeout_is_counted(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with fake_server("v2-slow") as port:
        r = _run("loadtest", "--target", f"http://127.0.0.1:{port}/v2/models/m",
                 "--concurrency", "1", "--window", "0.5s", "--request-timeout", "0.3s",
                 "--output", str(tmp_path / "x"))
    assert r.returncode == 1
    step = json.loads((tmp_path / "x" / "results.json").read_text())["scan"][0]["step"]
    assert step["errors"] >= 1 and any("timed out" in s for s in step["reasons"])


def test_real_inputs_from_a_file_feed_the_requests(server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    np.savez(tmp_path / "x.npz", input=np.zeros((3, 1, 32, 32, 3), np.uint8))
    r = _run("loadtest", "--target", server.url, "--concurrency", "1", "--window", "0.5s",
             "--inputs", str(tmp_path / "x.npz"), "--output", str(tmp_path / "lt"))
    assert r.returncode == 0, r.stderr
    np.savez(tmp_path / "bad.npz", input=np.zeros((3, 1, 16, 16, 3), np.uint8))
    r = _run("loadtest", "--target", server.url, "--concurrency", "1",
             "--inputs", str(tmp_path / "bad.npz"))
    assert r.returncode == 2 and "shape" in r.stderr and "Traceback" not in r.stderr


def test_a_two_input_model_is_served_and_load_tested(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Any model: float and token inputs, two outputs, answers checked against ONNX Runtime
    in this process, then a load test built from the server's own metadata."""
    import numpy as np
    import onnxruntime as ort
    import tritonclient.http as th
    from onnx_models import VOCAB, two_input_model

    from inferometer.oip import decode_response, encode_request

    path = two_input_model(tmp_path / "two.onnx")
    with serving(tmp_path / "logs", "--dim", "seq=5", "--max-batch", "4", model=str(path),
                 runtime="onnxruntime", name="two") as s:
        status, meta = s.get("/v2/models/two")
        assert status == 200, meta
        assert {i["name"]: i["datatype"] for i in meta["inputs"]} == {"x": "FP32",
                                                                      "ids": "INT64"}
        # the token ids' range travels with the metadata: no --value-range needed
        assert {i["name"]: i.get("parameters") for i in meta["inputs"]} == {
            "x": {"values": "normal"}, "ids": {"values": "tokens", "low": 0, "high": VOCAB}}
        rng = np.random.default_rng(0)
        x = rng.standard_normal((2, 8)).astype(np.float32)
        ids = rng.integers(0, VOCAB, (2, 5)).astype(np.int64)
        body, hl = encode_request([("x", x), ("ids", ids)])
        code, headers, data = s.post("/v2/models/two/infer", body,
                                     {"Inference-Header-Content-Length": str(hl)})
        assert code == 200, data
        got = decode_response(data, int(headers["inference-header-content-length"]))
        want = ort.InferenceSession(str(path)).run(None, {"x": x, "ids": ids})
        assert np.allclose(got["logits"], want[0], atol=1e-5)
        assert np.allclose(got["embedded"], want[1], atol=1e-5)
        client = th.InferenceServerClient(f"127.0.0.1:{s.http}")
        assert client.is_model_ready("two")
        r = _run("loadtest", "--target", s.url, "--concurrency", "2", "--window", "0.5s",
                 "--value-range", f"ids:0,{VOCAB}", "--output", str(tmp_path / "lt"))
        assert r.returncode == 0, r.stderr
        r = _run("loadtest", "--target", s.url, "--concurrency", "1", "--window", "0.5s",
                 "--output", str(tmp_path / "lt2"))
        assert r.returncode == 0, r.stderr
        assert "VALID" in r.stdout


def test_stated_values_are_taken_only_when_whole() -> None:
    """A server's stated values win over the guess from name and dtype; a statement we cannot
    use (an unknown kind, a range without both ends) leaves the guess, which for an integer of
    unknown range is a refusal naming --value-range."""
    from inferometer.loadgen.remote import remote_model

    t = parse_target("http://127.0.0.1:1/v2/models/m")

    def values(params: object) -> object:
        meta = {"inputs": [{"name": "ids", "datatype": "INT64", "shape": [-1, 4],
                            **({"parameters": params} if params is not None else {})}]}
        return remote_model(t, meta).io.inputs[0].values

    v = values({"values": "tokens", "low": 0, "high": 50})
    assert (v.kind, v.low, v.high) == ("tokens", 0, 50)
    assert values({"values": "ones"}).kind == "ones"
    for bad in (None, {"values": "tokens", "low": 0}, {"values": "tokens", "low": 5, "high": 5},
                {"values": "mystery"}, "tokens"):
        assert values(bad).kind == "range" and values(bad).low is None, bad


def test_a_request_completes_when_its_answer_is_in_not_when_it_is_decoded() -> None:
    """perf_analyzer's timing: the client's own reading of the answer's tensors is not the
    server's latency. A check that takes 300 ms must not show in the completion time, and an
    answer it refuses is still an error."""
    from inferometer.loadgen.remote import Remote, RemoteError, remote_model, request_feeds

    with fake_server("v2-ok") as port:
        target = parse_target(f"http://127.0.0.1:{port}/v2/models/m")
        with Remote(target, connections=1) as pool:
            pool.prepare(request_feeds(remote_model(target, pool.meta), 1, []))
            real_check = pool.client.check
            got: dict[str, int] = {}

            def slow_check(answer) -> None:  # type: ignore[no-untyped-def]
                got.setdefault("check", time.monotonic_ns())
                time.sleep(0.3)
                real_check(answer)

            pool.client.check = slow_check  # type: ignore[method-assign]
            done = threading.Event()
            pool.on_start = lambda qid: got.setdefault("sent", time.monotonic_ns())
            pool.on_complete = lambda qid, t: (got.setdefault("done", t), done.set())
            t0 = time.monotonic_ns()
            pool.submit(0)
            assert done.wait(10)
            assert time.monotonic_ns() - t0 >= 0.3e9  # the check ran, after the stamp
            # the stamp is taken before the check begins (no absolute bound: a loaded host
            # delayed the answer itself by 0.36 s once)
            assert got["sent"] <= got["done"] <= got["check"]

            def refuse(answer) -> None:  # type: ignore[no-untyped-def]
                raise RemoteError("an answer without outputs")

            pool.client.check = refuse  # type: ignore[method-assign]
            failed = threading.Event()
            pool.on_error = lambda qid, reason: failed.set()
            pool.submit(1)
            assert failed.wait(10)


@pytest.mark.parametrize("concurrency", [1, 3])
def test_concurrency_mode_loops_each_client_thread_as_perf_analyzer_does(
        concurrency: int) -> None:
    """An answered request is replaced by the thread that got the answer, so no hand-off
    to another thread (a wake-up) falls inside the next request's latency: N in flight
    means N client threads, each sending its next request itself."""
    from inferometer.loadgen import engine
    from inferometer.loadgen.remote import Remote, remote_model, request_feeds

    with fake_server("v2-ok") as port:
        target = parse_target(f"http://127.0.0.1:{port}/v2/models/m")
        with Remote(target, connections=8) as pool:
            pool.prepare(request_feeds(remote_model(target, pool.meta), 1, []))
            senders: list[int] = []
            real_infer = pool.client.infer

            def infer(req):  # type: ignore[no-untyped-def]
                senders.append(threading.get_ident())
                return real_infer(req)

            pool.client.infer = infer  # type: ignore[method-assign]
            step, _ = engine.run_concurrency(pool, concurrency, window_s=0.2,
                                             window_requests=20, stability=10.0)
    assert step.errors == 0 and len(senders) > 3 * 20
    assert len(set(senders)) == concurrency


def test_two_targets_take_turns_and_end_with_their_tested_comparison(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`--target A,B --repeat 2`: A1 B1 A2 B2 (turns, so a drifting host lands on both
    sides), stored as OUT/A/1.. and OUT/B/1..; the output ends with compare's table over
    the runs, and `compare OUT/A OUT/B` reads each directory as its runs."""
    out = tmp_path / "ab"
    with fake_server("v2-ok") as pa, fake_server("v2-ok") as pb:
        a, b = (f"http://127.0.0.1:{p}/v2/models/m" for p in (pa, pb))
        r = _run("loadtest", "--target", f"{a},{b}", "--repeat", "2", "--concurrency", "1",
                 "--window", "0.3s", "--output", str(out))
    assert r.returncode == 0, r.stderr
    turns = [line.split("--- loadtest ")[1] for line in r.stdout.splitlines()
             if line.startswith("--- loadtest ")]
    assert turns == [f"1 of 2, A: {a}", f"1 of 2, B: {b}", f"2 of 2, A: {a}",
                     f"2 of 2, B: {b}"]
    assert sorted(str(p.relative_to(out)) for p in out.glob("*/*/results.json")) == [
        "A/1/results.json", "A/2/results.json", "B/1/results.json", "B/2/results.json"]
    assert "95% CI" in r.stdout and f"inferometer compare {out / 'A'} {out / 'B'}" in r.stdout
    r = _run("compare", str(out / "A"), str(out / "B"), "--json")
    assert r.returncode == 0, r.stderr
    figures = [row for row in json.loads(r.stdout)["rows"] if row["a_runs"]]
    assert figures and all(len(row["a_runs"]) == len(row["b_runs"]) == 2 for row in figures)
    r = _run("report", str(out / "A"))  # a directory of runs is not one run
    assert r.returncode == 2 and "holds 2 runs of one test" in r.stderr


def test_repeat_alone_stores_numbered_runs_and_refuses_nonsense(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "three"
    with fake_server("v2-ok") as port:
        url = f"http://127.0.0.1:{port}/v2/models/m"
        r = _run("loadtest", "--target", url, "--repeat", "3", "--concurrency", "1",
                 "--window", "0.3s", "--output", str(out))
        assert r.returncode == 0, r.stderr
        assert [p.name for p in sorted(out.iterdir())] == ["1", "2", "3"]
        assert f"3 runs: {out}" in r.stdout
        bad = _run("loadtest", "--target", f"{url},{url},{url}", "--concurrency", "1")
        assert bad.returncode == 2 and "or two (A,B)" in bad.stderr
        bad = _run("loadtest", "--target", url, "--repeat", "0", "--concurrency", "1")
        assert bad.returncode == 2 and "--repeat" in bad.stderr
