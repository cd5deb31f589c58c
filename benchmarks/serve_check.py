"""The serving benchmarks, on this machine, against servers this script starts on loopback:

    python benchmarks/serve_check.py [--model resnet50] [--runtime onnxruntime] [--out DIR]
        [--only client,overhead,triton] [--slo 100ms] [--rounds 3] [--scan-rounds 1]

1. client:   at concurrency 1 and 4 against one `serve`, our client's concurrency mode (mean
             latency, throughput) against a closed loop of tritonclient with as many threads,
             over HTTP and gRPC, interleaved; the ratio ours/theirs (pass: within 5%).
2. overhead: `serve` at concurrency 1 (binary tensors) against the in-process single stream of
             the same runtime and layout: the p50 the server adds per request, the server's
             own split (client latency - server request time), the client's mean latency
             over the same requests' inference as the instance timed it (prepare + run: the
             in-process timed region), the in-process stream's mean over its own inference,
             and the difference of the last two: what serve adds a request, with neither
             drift nor two processes' speeds in it; and request by request (each answer's
             latency minus the inference its Server-Timing header gives), the p50 of what
             serve adds, the in-process stream's own part taken off (bar: <= 1 ms); and
             the same, in turn with serve's, of the architecture's floor on this host
             (benchmarks/serve_floor.py: uvicorn and one instance process, nothing else).
3. triton:   `serve` against `serve --engine triton` on the same runtime and layout: p50 at
             concurrency 1 and the max QPS whose p99 meets --slo (a scan of each), side by side.
4. soak:     a 60 s run at concurrency 8 against `serve` (--soak-seconds): every request
             answered (the client's count equals the server's success count, no errors), and
             after SIGTERM no process of the server is left.

Each comparison is run --rounds times, the variants interleaved inside a round, and medians
and ranges are printed: this machine is shared and noisy.  Results go to DIR/serve_check.json.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from inferometer.loadgen.engine import server_delta
from inferometer.measure.speed import speed_probe

CLI = [sys.executable, "-m", "inferometer"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def served(model: str, runtime: str, logs: Path, *extra: str):  # type: ignore[no-untyped-def]
    hp, gp = free_port(), free_port()
    cmd = [*CLI, "serve", model, "--runtime", runtime, "--port", str(hp), "--grpc-port",
           str(gp), "--logs", str(logs), *extra]
    if "triton" in extra:
        cmd += ["--metrics-port", str(free_port())]
    with _up(cmd, hp, model, "serve"):
        yield hp, gp


@contextmanager
def floor_served(model: str, runtime: str, threads: str | None):  # type: ignore[no-untyped-def]
    """benchmarks/serve_floor.py: uvicorn and one instance process with nothing else, the
    least a server built as serve is can add on this host."""
    port = free_port()
    cmd = [sys.executable, str(Path(__file__).with_name("serve_floor.py")), model,
           "--runtime", runtime, "--port", str(port),
           *(["--threads", threads] if threads else [])]
    with _up(cmd, port, model, "the floor server"):
        yield f"http://127.0.0.1:{port}/v2/models/{model}"


@contextmanager
def _up(cmd: list[str], hp: int, model: str, what: str):  # type: ignore[no-untyped-def]
    """A server process, once it answers ready; SIGTERM after (and SIGKILL to its group if it
    does not stop)."""
    import http.client

    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", hp, timeout=5)
            c.request("GET", f"/v2/models/{model}/ready")
            if c.getresponse().status == 200:
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"{what} did not become ready in 300 s")
        time.sleep(0.5)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def ours(target: str, concurrency: int, out: Path, window: str = "5s") -> dict[str, float]:
    r = subprocess.run([*CLI, "loadtest", "--target", target, "--concurrency", str(concurrency),
                        "--window", window, "--output", str(out)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        raise SystemExit(f"loadtest failed: {r.stderr[-800:]}")
    st = json.loads((out / "results.json").read_text())["scan"][0]["step"]
    return {"mean_ms": st["mean_s"] * 1e3, "qps": st["achieved_qps"],
            "p50_ms": st["tiles_s"]["50"] * 1e3, "server": st["server"], "valid": st["valid"]}


def per_request(target: str, seconds: float) -> float:
    """Concurrency 1 with our client's HTTP connection and request bytes (those `loadtest
    --target` sends), each answer's latency next to the inference the server says it ran
    for that request (its Server-Timing header): the p50 of what serving added, taken
    request by request."""
    from inferometer.loadgen.remote import (
        Remote,
        parse_target,
        remote_model,
        request_feeds,
        server_timing,
    )

    added: list[float] = []
    with Remote(parse_target(target), connections=1) as remote:
        feeds = request_feeds(remote_model(remote.target, remote.meta), 1, [])
        reqs = [remote.client.encode(f) for f in feeds]
        warm_until, stop = time.monotonic() + 2.0, time.monotonic() + 2.0 + seconds
        i = 0
        while time.monotonic() < stop:
            t = time.monotonic_ns()
            answer = remote.client.infer(reqs[i % len(reqs)])
            d = time.monotonic_ns() - t
            remote.client.check(answer)
            i += 1
            if time.monotonic() > warm_until:
                added.append(d / 1e6 - server_timing(answer[1])["compute_infer"])
    return statistics.median(added)


def tritonclient_loop(proto: str, port: int, model: str, concurrency: int, seconds: float,
                      http_port: int | None = None) -> dict[str, Any]:
    """N threads, each its own tritonclient, each sending the next request when the last is
    answered: the field's client in a closed loop."""
    if proto == "http":
        import tritonclient.http as tc
    else:
        import tritonclient.grpc as tc  # type: ignore[no-redef]
    meta_client = tc.InferenceServerClient(f"127.0.0.1:{port}")
    meta = meta_client.get_model_metadata(model)
    inputs_meta = meta["inputs"] if isinstance(meta, dict) else [
        {"name": i.name, "datatype": i.datatype, "shape": list(i.shape)} for i in meta.inputs]
    rng = np.random.default_rng(0)
    arrays = {}
    for i in inputs_meta:
        shape = [1 if d == -1 else int(d) for d in i["shape"]]
        arrays[i["name"]] = (rng.integers(0, 256, shape, dtype=np.uint8)
                             if i["datatype"] == "UINT8" else
                             rng.standard_normal(shape).astype(np.float32))
    lat: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds + 2.0
    warm_until = time.monotonic() + 2.0

    def loop() -> None:
        client = tc.InferenceServerClient(f"127.0.0.1:{port}")
        ins = []
        for name, a in arrays.items():
            x = tc.InferInput(name, list(a.shape), "UINT8" if a.dtype == np.uint8 else "FP32")
            x.set_data_from_numpy(a)
            ins.append(x)
        while time.monotonic() < stop:
            t = time.perf_counter()
            client.infer(model, ins)
            d = time.perf_counter() - t
            if time.monotonic() > warm_until:
                with lock:
                    lat.append(d)
        client.close()
    threads = [threading.Thread(target=loop) for _ in range(concurrency)]
    for t in threads:
        t.start()
    time.sleep(max(0.0, warm_until - time.monotonic()))
    before = server_stats(http_port, model)
    for t in threads:
        t.join()
    after = server_stats(http_port, model)
    server = server_delta(before, after)
    return {"mean_ms": statistics.fmean(lat) * 1e3, "qps": len(lat) / seconds,
            "p50_ms": statistics.median(lat) * 1e3, "server": server}


def server_stats(http_port: int | None, model: str) -> dict[str, Any] | None:
    """The server's statistics, read over HTTP whichever protocol the load uses."""
    import http.client

    if http_port is None:
        return None
    c = http.client.HTTPConnection("127.0.0.1", http_port)
    c.request("GET", f"/v2/models/{model}/stats")
    return json.loads(c.getresponse().read())["model_stats"][0]["inference_stats"]


def single_stream(model: str, runtime: str, out: Path, *extra: str) -> dict[str, Any]:
    """The in-process single stream's p50, mean and the instance's own inference time."""
    r = subprocess.run([*CLI, "loadtest", model, "--runtime", runtime, "--scenario",
                        "single-stream", "--duration", "15s", "--output", str(out), *extra],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"single-stream failed: {r.stderr[-800:]}")
    st = json.loads((out / "results.json").read_text())["scan"][0]["step"]
    return {"p50_ms": st["tiles_s"]["50"] * 1e3, "mean_ms": st["mean_s"] * 1e3,
            "server": st.get("server", {})}


def scan(target: str, slo: str, out: Path) -> float:
    r = subprocess.run([*CLI, "scan", "--target", target, "--targets", slo, "--arrivals",
                        "exponential", "--output", str(out)], capture_output=True, text=True)
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("===FINAL_RESULT:")]
    if r.returncode != 0 or not line:
        raise SystemExit(f"scan failed: {r.stderr[-800:]}")
    final = ast.literal_eval(line[0].split(":", 1)[1].strip())
    return float(next(iter(final["exponential"].values())))


def soak(model: str, runtime: str, out: Path, seconds: float) -> dict[str, Any]:
    import psutil

    with served(model, runtime, out / "soak-logs") as (hp, _):
        server = next(p for p in psutil.process_iter(["cmdline"])
                      if f"--port {hp}" in " ".join(p.info["cmdline"] or []))
        family = [server, *server.children(recursive=True)]
        url = f"http://127.0.0.1:{hp}/v2/models/{model}"
        window = f"{seconds / 3:g}s"
        d = out / "soak"
        r = subprocess.run([*CLI, "loadtest", "--target", url, "--concurrency", "8", "--window",
                            window, "--stability", "0.5", "--output", str(d)],
                           capture_output=True, text=True)
        step = json.loads((d / "results.json").read_text())["scan"][0]["step"]
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", hp)
        c.request("GET", f"/v2/models/{model}/stats")
        stats = json.loads(c.getresponse().read())["model_stats"][0]["inference_stats"]
    time.sleep(2)
    left = [p.pid for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    return {"exit": r.returncode, "client_errors": step["errors"], "windows": step["windows"],
            "measured_s": step["duration_s"], "server_success": stats["success"]["count"],
            "server_fail": stats["fail"]["count"], "processes_left": left}


def spread(xs: list[float]) -> str:
    return f"{statistics.median(xs):.3f} (range {min(xs):.3f}-{max(xs):.3f}, n={len(xs)})"


def qps_spread(xs: list[float]) -> str:
    """Max QPS of scans, where the scan's -1 means that no load it tried met the bound."""
    met = [x for x in xs if x >= 0]
    none = f"no load met the bound in {len(xs) - len(met)} of {len(xs)} scans"
    if not met:
        return f"none ({none})"
    return spread(met) + (f"; {none}" if len(met) < len(xs) else "")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet50")
    ap.add_argument("--runtime", default="onnxruntime")
    ap.add_argument("--out", default="runs/serve-check")
    ap.add_argument("--only", default="client,overhead,triton,soak")
    ap.add_argument("--soak-seconds", type=float, default=60.0)
    ap.add_argument("--slo", default="100ms")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--scan-rounds", type=int, default=1,
                    help="scans per server (each takes minutes)")
    ap.add_argument("--threads-per-instance", default=None,
                    help="the instance layout of serve and of the in-process baseline "
                         "(default: the runtime's)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    parts = set(args.only.split(","))
    report: dict[str, Any] = {"model": args.model, "runtime": args.runtime,
                              "rounds": args.rounds}
    n = [0]

    def fresh(tag: str) -> Path:
        n[0] += 1
        return out / f"{n[0]:03d}-{tag}"

    layout = ([] if args.threads_per_instance is None
              else ["--threads-per-instance", str(args.threads_per_instance)])
    report["threads_per_instance"] = args.threads_per_instance
    with served(args.model, args.runtime, out / "serve-logs", *layout) as (hp, gp):
        http_url = f"http://127.0.0.1:{hp}/v2/models/{args.model}"
        grpc_url = f"grpc://127.0.0.1:{gp}/{args.model}"
        if "client" in parts:
            rows = []
            for c in (1, 4):
                for proto, url, port in (("http", http_url, hp), ("grpc", grpc_url, gp)):
                    qr, lr, oa, ob = [], [], [], []
                    for _ in range(args.rounds):
                        a = ours(url, c, fresh(f"ours-{proto}-{c}"))
                        b = tritonclient_loop(proto, port, args.model, c, 15.0,
                                              http_port=hp)
                        qr.append(a["qps"] / b["qps"])
                        lr.append(a["mean_ms"] / b["mean_ms"])
                        # each client's own cost: its mean latency over the server's mean
                        # request time in the same period (drift cancels out)
                        if a["server"].get("request_ms") and b["server"].get("request_ms"):
                            oa.append(a["mean_ms"] - a["server"]["request_ms"])
                            ob.append(b["mean_ms"] - b["server"]["request_ms"])
                    rows.append({"concurrency": c, "protocol": proto, "qps_ratio": qr,
                                 "mean_latency_ratio": lr, "ours_client_ms": oa,
                                 "tritonclient_client_ms": ob})
                    print(f"client c={c} {proto}: ours/tritonclient throughput {spread(qr)}, "
                          f"mean latency {spread(lr)}; client's own ms over the server's "
                          f"request time: ours {spread(oa) if oa else '-'}, tritonclient "
                          f"{spread(ob) if ob else '-'}", flush=True)
            report["client"] = rows
        if "overhead" in parts:
            added, split, over_infer, inproc_over, added_same = [], [], [], [], []
            added_p50: list[float] = []
            floor_p50: list[float] = []
            host: list[float] = []
            with floor_served(args.model, args.runtime, args.threads_per_instance) as floor_url:
                for _ in range(args.rounds):
                    # the host's pace this round (the tool's own probe, as `run` takes before
                    # each process): on this shared machine the added time follows it
                    host.append(speed_probe().loop_ms)
                    inproc = single_stream(args.model, args.runtime, fresh("inprocess"), *layout)
                    s = ours(http_url, 1, fresh("serve-c1"))
                    added.append(s["p50_ms"] - inproc["p50_ms"])
                    sv = s["server"]
                    if sv.get("request_ms"):
                        split.append(s["mean_ms"] - sv["request_ms"])
                    if sv.get("compute_ms"):
                        # the same requests' inference (prepare + run, the in-process timed
                        # region) as the instance timed it: what serving adds, drift cancelled
                        over_infer.append(s["mean_ms"] - sv["compute_ms"])
                    if inproc["server"].get("compute_ms") and sv.get("compute_ms"):
                        # the same for the in-process stream (its latency over its own
                        # inference): the difference is serve's added time per request with
                        # neither the host's drift nor the two processes' speeds in it
                        inproc_over.append(inproc["mean_ms"] - inproc["server"]["compute_ms"])
                        added_same.append(over_infer[-1] - inproc_over[-1])
                        # request by request (the server's Server-Timing): the p50 the issue
                        # asks for, with the in-process stream's own part taken off as above
                        # and the same of the architecture's floor (serve_floor.py), the two
                        # taken in turn, first one then the other
                        pair = [(added_p50, http_url), (floor_p50, floor_url)]
                        for into, url in pair[::-1] if len(added_p50) % 2 else pair:
                            into.append(per_request(url, 15.0) - inproc_over[-1])
            report["overhead"] = {"added_p50_ms": added, "client_minus_server_ms": split,
                                  "client_minus_infer_ms": over_infer,
                                  "inprocess_minus_infer_ms": inproc_over,
                                  "added_over_infer_ms": added_same,
                                  "added_p50_per_request_ms": added_p50,
                                  "floor_added_p50_per_request_ms": floor_p50,
                                  "host_loop_probe_ms": host}
            print(f"overhead: serve p50 - in-process p50 {spread(added)} ms (two processes, "
                  f"measured one after the other); client mean - server request mean "
                  f"{spread(split) if split else '-'} ms; client mean - the same requests' "
                  f"inference {spread(over_infer) if over_infer else '-'} ms; in-process "
                  f"mean - its inference {spread(inproc_over) if inproc_over else '-'} ms; "
                  f"so serve adds {spread(added_same) if added_same else '-'} ms a request "
                  "on average", flush=True)
            if added_p50:
                met = sum(x <= 1.0 for x in added_p50)
                print(f"overhead: serve's added p50 per request (each answer's latency minus "
                      f"the inference its Server-Timing gives, minus the in-process stream's "
                      f"mean over its inference) {spread(added_p50)} ms; bar <= 1 ms met in "
                      f"{met} of {len(added_p50)} rounds (each round: "
                      + ", ".join(f"{x:.3f}" for x in added_p50) + " ms; the host's fixed "
                      "Python loop before each: " + ", ".join(f"{x:.2f}" for x in host)
                      + " ms)", flush=True)
                over = [a - f for a, f in zip(added_p50, floor_p50, strict=True)]
                print(f"overhead: the architecture's floor (benchmarks/serve_floor.py: uvicorn "
                      f"and one instance process, nothing else) added p50 {spread(floor_p50)} "
                      f"ms the same rounds, so serve adds {spread(over)} ms over its floor "
                      "(each round: " + ", ".join(f"{x:.3f}" for x in floor_p50) + " ms)",
                      flush=True)
        if "triton" in parts:
            # both servers up at once (an idle one costs nothing), measured interleaved
            with served(args.model, args.runtime, out / "triton-logs", "--engine",
                        "triton", *layout) as (thp, _):
                turl = f"http://127.0.0.1:{thp}/v2/models/{args.model}"
                res: dict[str, dict[str, list[float]]] = {
                    k: {"p50_c1_ms": [], "max_qps": []} for k in ("serve", "triton")}
                for r in range(args.rounds):
                    for name, url in (("serve", http_url), ("triton", turl)):
                        res[name]["p50_c1_ms"].append(ours(url, 1, fresh(f"{name}-c1"))[
                            "p50_ms"])
                    for name, url in (("serve", http_url), ("triton", turl)):
                        if r < args.scan_rounds:
                            res[name]["max_qps"].append(scan(url, args.slo,
                                                             fresh(f"{name}-scan")))
                report.update(res)
            for name in ("serve", "triton"):
                print(f"{name}: p50 at c=1 {spread(res[name]['p50_c1_ms'])} ms, max QPS under "
                      f"p99 {args.slo} {qps_spread(res[name]['max_qps'])}", flush=True)
    if "soak" in parts:
        report["soak"] = soak(args.model, args.runtime, out, args.soak_seconds)
        print(f"soak: {report['soak']}", flush=True)
    (out / "serve_check.json").write_text(json.dumps(report, indent=1))
    print(f"wrote {out / 'serve_check.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
