"""The option schema: every command's flags, their defaults and help.  The CLI parses the
command line with it, `--config` files and the Python API speak its option names, and a run's
stored command line is parsed with it again to resume; it names no handler (the CLI maps
commands to what prints them)."""

from __future__ import annotations

import argparse

from .. import __version__, envs
from ..plan import AUTO_BUDGET_S, AUTO_FIRST, AUTO_MAX, DEFAULT_LENGTH, MAX_SPREAD
from ..report.compare import NOISE
from .tune import DEFAULT_RUNTIMES


def add_model_args(p: argparse.ArgumentParser, sweep: bool = True) -> None:
    p.add_argument("--shape", help="input shapes: name:1x128,other:1x128 (or OpenVINO's "
                   "name[1,128]); a bare CxHxW for a one-input model's items")
    if sweep:
        p.add_argument("--dim", action="append", metavar="NAME=N[,N...]",
                       help="bind a symbolic dim, e.g. --dim seq=128,384: each value is its "
                       "own cell (repeatable; see inferometer inspect MODEL)")
    else:
        p.add_argument("--dim", action="append", metavar="NAME=N",
                       help="bind a symbolic dim, e.g. --dim seq=128 (repeatable)")
    p.add_argument("--value-range", action="append", metavar="NAME:LOW,HIGH",
                   help="values of an input in [LOW, HIGH) (integer inputs of unknown range)")
    p.add_argument("--seed", type=int, help="seed of the generated inputs (fixed by default, "
                   "so runs compare like with like)")
    p.add_argument("--inputs", action="append", metavar="FILE.npz|NAME=FILE.npy",
                   help="real input data, arrays named after the inputs; several samples "
                   "(one more leading axis) are used round-robin")


def add_tune_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    t = sub.add_parser("tune", help="search runtime x precision x processes x threads x "
                       "batching under an SLO and say what to deploy")
    t.add_argument("model", nargs="?", help="zoo name, .onnx or .pt2 path")
    add_model_args(t, sweep=False)
    t.add_argument("--slo", help="latency bound, e.g. p99:50ms (the objective's constraint)")
    t.add_argument("--objective", default="throughput",
                   help="throughput (max QPS under the SLO, the default) or latency (lowest "
                   "tail at --qps)")
    t.add_argument("--qps", type=float, help="the load for --objective latency")
    t.add_argument("--runtimes", help=f"runtimes to search (default: the installed ones of "
                   f"{', '.join(DEFAULT_RUNTIMES)})")
    t.add_argument("--precisions", default="fp32", help="fp32,int8,bf16 (default fp32; a "
                   "reduced one must pass the accuracy check and beat fp32 beyond noise)")
    t.add_argument("--layouts", help="PROCESSESxTHREADS list, e.g. 1x2,2x1 (default: 1xauto "
                   "and every even split of the cores)")
    t.add_argument("--max-batch", type=int, default=8,
                   help="largest dynamic batch searched (1, 2, 4, ... up to it; default 8)")
    t.add_argument("--batch-delay", default="0",
                   help="queue delays searched with batching, e.g. 0,2ms (default 0: take "
                   "what is queued)")
    t.add_argument("--max-accuracy-drop", type=float,
                   help="top-1 points a reduced precision may lose (labelled data)")
    t.add_argument("--dataset", help="labelled data for the accuracy check (digits, "
                   "imagenet:DIR, folder:DIR, npz:FILE); without it, fidelity to fp32")
    t.add_argument("--max-memory", help="peak resident memory of all processes, e.g. 3GB")
    t.add_argument("--budget", help="measuring time for the whole search, e.g. 15m")
    t.add_argument("--cost-per-hour", type=float,
                   help="the machine's price per hour: adds cost per million inferences")
    t.add_argument("--exhaustive", action="store_true",
                   help="scan every candidate (for checking the search)")
    t.add_argument("--arrivals", default="exponential", help="exponential or linear")
    t.add_argument("--retests", type=int, default=1,
                   help="head-to-head re-tests a side of the two best at the leader's load "
                   "(default 1); more make a 'better than' harder to earn on a noisy host")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped tune run")
    t.add_argument("--output", help="run directory (default: runs/<ts>-tune-<model>)")


def add_serve_parser(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("serve", help="serve a model over the Open Inference Protocol (KServe "
                       "v2: HTTP and gRPC), on the load tests' instance processes")
    s.add_argument("model", nargs="?", help="zoo name, .onnx or .pt2 path")
    s.add_argument("--from", dest="from_run", metavar="RUN_DIR",
                   help="serve what `tune` recommended (RUN_DIR/deploy.json)")
    add_model_args(s, sweep=False)
    s.add_argument("--runtime", help="one runtime (name or name:variant)")
    s.add_argument("--variant", help="the runtime's variant (default: its default)")
    s.add_argument("--instances", type=int, help="runtime instances (processes; 1)")
    s.add_argument("--threads-per-instance", help="threads per instance (default: auto)")
    s.add_argument("--pin", action="store_true", help="pin instances to disjoint CPUs")
    s.add_argument("--dynamic-batching", metavar="max=N[,delay=T]",
                   help="group queued requests into batches of up to N, holding a batch open "
                   "up to T for more (Triton's dynamic batcher), e.g. max=8,delay=2ms")
    s.add_argument("--max-batch", type=int,
                   help="the largest batch one request may carry (default: the dynamic "
                   "batcher's max, else 1)")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    s.add_argument("--port", type=int, default=8000, help="HTTP port (8000)")
    s.add_argument("--grpc-port", type=int, default=8001, help="gRPC port (8001; 0: none)")
    s.add_argument("--engine", choices=("native", "triton"), default="native",
                   help="native (ours) or triton (the same sessions in PyTriton's real Triton "
                   "server; inferometer env create triton)")
    s.add_argument("--metrics-port", type=int, default=8002,
                   help="Triton's metrics port (8002; ours serves /metrics on --port)")
    s.add_argument("--max-body", type=int,
                   help="largest request body in bytes (default: the max batch in JSON)")
    s.add_argument("--logs", help="directory for the instances' logs "
                   "(default: runs/<ts>-serve-<model>)")


_DESCRIPTION = """\
Benchmark deep-learning inference across runtimes and devices: latency, throughput, memory,
output integrity, load tests and accuracy, each cell in its own worker process.

start here:
  inferometer runtimes              what is installed, and how to install the rest
  inferometer run resnet50          every installed runtime, threads 1..ncpu + auto, batch 1
  inferometer report RUN_DIR        plots, report.md and report.html of a stored run
"""


def parser(parser_class: type[argparse.ArgumentParser] = argparse.ArgumentParser
           ) -> argparse.ArgumentParser:
    """Every command's options (parser_class: the CLI's, which errs in one line)."""
    p = parser_class(prog="inferometer", description=_DESCRIPTION,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"inferometer {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=parser_class)
    sub.add_parser("runtimes", help="list runtimes, versions, availability, install hints"
                   )
    sub.add_parser("models", help="list the model zoo")
    ins = sub.add_parser("inspect", help="a model's inputs and outputs, the dims to bind and "
                         "the values each input gets")
    ins.add_argument("model", help="zoo name, .onnx, .pt2 or TorchScript .pt file")
    ins.add_argument("--shape", help="as for run: see what it binds")
    ins.add_argument("--value-range", action="append", metavar="NAME:LOW,HIGH")
    r = sub.add_parser("run", help="benchmark models across runtimes, threads and batch sizes")
    r.add_argument("models", nargs="?", help="zoo names, .onnx or .pt2 paths, comma-separated")
    r.add_argument("--runtimes", help="comma-separated; name or name:variant (default: installed)")
    r.add_argument("--variants", help="comma-separated variants, for the runtimes that have them")
    r.add_argument("--precisions", help="fp32,bf16,int8...: each runtime's variant per precision")
    r.add_argument("--device", default="cpu", help="cpu or cuda (cpu)")
    r.add_argument("--threads", help="comma-separated counts and/or 'auto' (default: 1..ncpu,auto)")
    r.add_argument("--batch", help="comma-separated batch sizes (default: 1)")
    add_model_args(r)
    r.add_argument("--output", help="run directory (default: runs/<timestamp>-<models>)")
    r.add_argument("--resume", metavar="RUN_DIR", help="finish an interrupted run")
    r.add_argument("--no-preprocess", action="store_true",
                   help="time the runtime call alone, not an image's uint8 -> input "
                   "conversion (other inputs are always prepared before timing)")
    r.add_argument("--pin", action="store_true", help="pin each worker to its first N CPUs")
    r.add_argument("--repeat", default="auto",
                   help=f"fresh worker processes per cell: N, or auto (default: as many "
                   f"as take at most {AUTO_BUDGET_S:g} s together, {AUTO_FIRST} to "
                   f"{AUTO_MAX}); intervals and verdicts rest on the spread between "
                   "them, which one process cannot show")
    r.add_argument("--order", default="interleaved",
                   help="interleaved (every cell's 1st process, then every 2nd, ...; default), "
                   "sequential or random")
    r.add_argument("--max-spread", type=float, default=MAX_SPREAD * 100,
                   help="flag a cell unstable when its process medians spread more than this "
                   f"%% ({MAX_SPREAD * 100:g})")
    r.add_argument("--timeout", type=float, default=600.0, help="seconds per process (600)")
    r.add_argument("--warmup", type=int, default=None,
                   help=f"warm-up runs after the first (default {DEFAULT_LENGTH.warmup}, ended "
                   f"once they have run {DEFAULT_LENGTH.warmup_max_s:g} s; N given: all N)")
    r.add_argument("--min-time", type=float, default=DEFAULT_LENGTH.min_time_s,
                   help=f"seconds per process, at least ({DEFAULT_LENGTH.min_time_s:g})")
    r.add_argument("--max-time", type=float, default=DEFAULT_LENGTH.max_time_s,
                   help=f"seconds per process, at most ({DEFAULT_LENGTH.max_time_s:g})")
    r.add_argument("--min-count", type=int, default=DEFAULT_LENGTH.min_count,
                   help=f"runs per process, at least ({DEFAULT_LENGTH.min_count})")
    r.add_argument("--target-ci", type=float, default=None,
                   help="a process stops early when its median's 95%% CI is within +-this %% "
                   f"(default {DEFAULT_LENGTH.target_rel_ci * 100:g} x sqrt(k), k the processes "
                   "a cell pools counted up to 3: the pooled median gets about that precision)")
    r.add_argument("--noisy", type=float, default=0.15,
                   help="flag a cell when other processes used more than this share of the CPUs it "
                        "ran on (0.15)")
    r.add_argument("--reference", default="onnxruntime", help="integrity reference runtime")
    r.add_argument("--report", action="store_true",
                   help="also write report.html, report.md and plots/ (inferometer report)")
    r.add_argument("--dry-run", action="store_true",
                   help="print the cells, conversions and time bounds; run nothing")
    r.add_argument("--cluster", metavar="WHERE",
                   help="run the processes on a Ray cluster: ray://HEAD:10001, auto (RAY_ADDRESS "
                   "or the cluster this runs in), or local:N (N nodes on this machine, "
                   "loopback, for trying it out); cells run on each machine type it has")
    r.add_argument("--slots-per-node", type=int, default=1,
                   help="processes a node runs at once, each on its own CPUs (1)")
    r.add_argument("--cost-per-hour", metavar="PRICES",
                   help="TYPE=PRICE,... (or one PRICE for every machine): adds the cost per "
                   "million inferences to each cell and a cheapest line")
    r.add_argument("--cluster-timeout", type=float, default=60.0,
                   help="seconds to wait for the cluster and its nodes, and for a process "
                   "Ray has queued to start on its node (60; it then fails, to be resumed)")
    r.add_argument("--config", metavar="FILE.toml",
                   help="any of these options from a TOML file (a run's sweep.toml reruns it); "
                   "the command line's win")
    e = sub.add_parser("env", help="managed per-runtime environments")
    esub = e.add_subparsers(dest="env_command", required=True, parser_class=parser_class)
    ec = esub.add_parser("create", help="create (or reuse) an environment")
    ec.add_argument("spec", help=f"{', '.join(envs.RECIPES)}, or a pinned package like "
                    "onnxruntime==1.20.1")
    esub.add_parser("list", help="list environments")
    er = esub.add_parser("remove", help="delete an environment")
    er.add_argument("name")
    def load_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("model", nargs="?", help="zoo name, .onnx or .pt2 path (none with a "
                       "remote --target URL)")
        add_model_args(p, sweep=False)
        p.add_argument("--runtime", help="one runtime (name or name:variant)")
        p.add_argument("--variant", help="the runtime's variant (default: its default)")
        p.add_argument("--engine", default="native", help="native (ours) or mlperf (LoadGen)")
        p.add_argument("--instances", default="1", help="runtime instances (processes)")
        p.add_argument("--threads-per-instance", help="threads per instance (default: auto)")
        p.add_argument("--percentile", type=float, default=99.0, help="latency percentile (99)")
        p.add_argument("--duration", default="10s", help="at least this long per test (10s)")
        p.add_argument("--pin", action="store_true", help="pin instances to disjoint CPUs")
        p.add_argument("--dynamic-batching", metavar="max=N[,delay=T]",
                       help="group queued queries into batches of up to N, holding a batch "
                       "open up to T for more (Triton's dynamic batcher), e.g. max=8,delay=2ms")
        p.add_argument("--output", help="run directory (default: runs/<ts>-<kind>-<model>)")
        p.add_argument("--concurrency", help="perf_analyzer's concurrency mode: this many "
                       "requests always in flight, e.g. 1,2,4,8 (one stable step each)")
        p.add_argument("--window", default="5s", help="concurrency mode: measurement window "
                       "(5s, and at least 50 answers)")
        p.add_argument("--request-timeout", default="30s",
                       help="a remote target's request unanswered this long failed (30s)")
        p.add_argument("--repeat", type=int, default=1,
                       help="run the whole test N times, each with fresh processes and "
                       "connections, into OUTPUT/1..N (1); `compare` reads that directory "
                       "as its N runs and tests a difference against their spread")
        p.add_argument("--stability", type=float, default=0.10,
                       help="concurrency mode: stable when the last 3 windows agree within "
                       "this fraction (0.10)")

    lt = sub.add_parser("loadtest", help="one server or offline load test")
    load_args(lt)
    lt.add_argument("--scenario", choices=("server", "offline", "single-stream",
                                           "concurrency"),
                    help="server (default), offline, single-stream, or concurrency (implied "
                    "by --concurrency)")
    lt.add_argument("--qps", type=float, help="offered queries per second (server)")
    lt.add_argument("--arrivals", default="exponential", help="linear or exponential")
    lt.add_argument("--target", help="a remote v2 server: http://HOST:PORT/v2/models/NAME or "
                    "grpc://HOST:PORT/NAME (a latency such as 100ms is read as --targets); "
                    "two, A,B: they take turns run by run (with --repeat) and their "
                    "comparison ends the output")
    lt.add_argument("--targets", dest="latency_target",
                    help="latency bound for VALID, e.g. 100ms (server)")
    lt.add_argument("--queries", type=int, default=256, help="items (offline; 256)")
    lt.add_argument("--batch", type=int, default=8, help="batch size (offline; 8)")
    sc = sub.add_parser("scan", help="max QPS whose p99 meets each latency target")
    load_args(sc)
    sc.add_argument("--targets", default="10ms,50ms,100ms,200ms", help="latency bounds")
    sc.add_argument("--target", help="a remote v2 server: http://HOST:PORT/v2/models/NAME or "
                    "grpc://HOST:PORT/NAME; two, A,B: they take turns run by run (with "
                    "--repeat) and their comparison ends the output")
    sc.add_argument("--arrivals", default="linear,exponential", help="arrival processes")
    sc.add_argument("--precision", type=float, default=0.1,
                    help="stop bisecting when the QPS bracket is within this fraction (0.1)")
    add_serve_parser(sub)
    a = sub.add_parser("accuracy", help="top-1 per runtime x precision on labelled data")
    a.add_argument("model", help="zoo name, .onnx or .pt2 path (digits: the built-in trained "
                   "model)")
    a.add_argument("--dataset", help="digits, imagenet:DIR (val_map.txt), folder:DIR, or "
                   "npz:FILE for any model (arrays named after the inputs, optional labels)")
    a.add_argument("--limit", type=int, help="first N images only")
    a.add_argument("--runtimes", help="comma-separated (default: installed)")
    a.add_argument("--precisions", default="fp32,bf16,int8", help="fp32,fp16,bf16,int8")
    a.add_argument("--device", default="cpu",
                   help="cpu or cuda (cpu); the fp32 reference runs on the CPU either way")
    a.add_argument("--batch", default="1", help="batch size (1)")
    a.add_argument("--threads", help="threads (default: auto)")
    a.add_argument("--max-drop", type=float, default=1.0,
                   help="flag rows whose top-1 drops more than this many points (1.0)")
    a.add_argument("--timeout", type=float, default=900.0, help="seconds per job (900)")
    a.add_argument("--output", help="run directory (default: runs/<ts>-accuracy-<model>)")
    add_tune_parser(sub)
    s = sub.add_parser("show", help="print the tables of a stored run")
    s.add_argument("run_dir")
    s.add_argument("--json", action="store_true",
                   help="print the results as JSON (current schema)")
    t = sub.add_parser("train", help="time a training step: forward, backward, update")
    t.add_argument("model", help="zoo name")
    t.add_argument("--device", default="cpu", help="cpu or cuda (cpu)")
    t.add_argument("--batch", type=int, default=32, help="batch size (32)")
    t.add_argument("--optimizer", default="sgd", help="sgd (momentum 0.9), adam or adamw")
    t.add_argument("--precisions", default="fp32,amp",
                   help="fp32 and/or amp (fp16 + loss scaling on CUDA, bf16 on the CPU)")
    t.add_argument("--threads", help="CPU threads (default: auto)")
    t.add_argument("--warmup", type=int, default=3, help="untimed steps first (3)")
    t.add_argument("--iterations", type=int, default=20, help="timed steps (20)")
    t.add_argument("--channels-last", action="store_true", help="model and input channels_last")
    t.add_argument("--timeout", type=float, default=1800.0, help="seconds per precision (1800)")
    t.add_argument("--output", help="run directory (default: runs/<ts>-train-<model>)")
    rp = sub.add_parser("report", help="plots, report.md and a self-contained report.html")
    rp.add_argument("run_dir")
    rp.add_argument("--open", action="store_true", help="open report.html in a browser")
    c = sub.add_parser("compare", help="B vs A per cell with confidence intervals; exit 1 on "
                       "regression")
    c.add_argument("run_a", help="baseline run directory (A1,A2,...: several runs, pooled as "
                   "processes for speed runs, each a repetition for load runs)")
    c.add_argument("run_b", nargs="?", help="candidate run directory (B1,B2,...)")
    c.add_argument("--by", choices=("machine",),
                   help="machine: one run's cells on each machine type of its cluster, B/A "
                   "against the baseline type")
    c.add_argument("--baseline", help="--by machine: the machine type that is A (default: the "
                   "first by name)")
    c.add_argument("--fail-on", default="p50",
                   help="METRIC[:PERCENT],...: exit 1 when a metric is significantly worse by "
                   "more than PERCENT (p50, p90, p99, mean, items_per_s, peak_rss, load_s; "
                   "default: p50, any significant slowdown)")
    c.add_argument("--noise", type=float, default=NOISE * 100,
                   help=f"changes within +-this %% are never called ({NOISE * 100:g}); the "
                   "floor rises to the between-process spread either side shows")
    c.add_argument("--json", action="store_true", help="print the comparison as JSON")
    x = sub.add_parser("export", help="write a run's rows as csv, json or parquet")
    x.add_argument("run_dir")
    x.add_argument("--format", choices=("csv", "json", "parquet"), default="csv")
    x.add_argument("--output", help="file (default: RUN_DIR/export.FORMAT)")
    h = sub.add_parser("history", help="one configuration across stored runs, oldest first")
    h.add_argument("--model", required=True)
    h.add_argument("--runtime")
    h.add_argument("--variant")
    h.add_argument("--threads", help="a thread count or auto")
    h.add_argument("--batch", type=int)
    h.add_argument("--runs", default="runs", help="directory holding run directories (runs)")
    h.add_argument("--plot", help="also draw the trend into this .png or .svg file")
    return p


def command_parser(command: str) -> argparse.ArgumentParser:
    """One command's own parser: the options --config files and the Python API speak."""
    sub = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]


def run_parser() -> argparse.ArgumentParser:
    return command_parser("run")
