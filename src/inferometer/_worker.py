"""Worker process: `python -m inferometer._worker < job.json`.

Runs exactly one cell in a fresh process and writes a WorkerReport to job.report_path.  It
imports only numpy, psutil and the stdlib besides the one runtime it loads, so it can run in
an environment that holds nothing else.  Thread environment variables were set by the parent
before this interpreter started, so they are in force before any runtime is imported.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
import traceback

import numpy as np

from ._child import failure, finish
from .jobs import Job
from .measure.libraries import mapped_libraries, runtime_libraries
from .measure.load import LoadProbe
from .measure.memory import peak_rss_mb, rss_mb
from .models.inputs import Feed, generate_all, load_samples
from .results.codec import from_dict
from .results.schema import WorkerReport
from .runtimes import LoadOptions, Session, get
from .runtimes.base import converts_per_shape, variant
from .scenarios import single_stream


def _pin(threads: int | None) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, cpus[: threads or len(cpus)])


INTEGRITY_ITEMS = 8


def _feeds(job: Job, shapes: dict[str, tuple[int, ...]]) -> list[Feed]:
    """The cell's host inputs: the user's samples (used round-robin), or one generated feed."""
    model = job.model
    if model.data:
        return load_samples(model.io, model.data, shapes)
    return [generate_all(model.io, shapes, model.seed)]


def _integrity_outputs(session: Session, job: Job, feeds: list[Feed]) -> list[np.ndarray]:
    """Every output on fixed inputs, at least 8 items run in batches of the cell's size, so
    even a batch-1 cell is checked on 8 inputs (the user's samples: up to 8 of the cell's
    feeds; a model without a batch dim: its one generated feed)."""
    model, b = job.model, job.spec.batch
    if model.data or model.io.batch_dim is None:
        feeds = feeds[:INTEGRITY_ITEMS]
    else:
        dims = dict(job.spec.dims)
        n = -(-max(INTEGRITY_ITEMS, b) // b) * b
        # item i depends on i alone: batches of b cut from n items are the cell's own
        every = generate_all(model.io, model.io.bind(n, dims), model.seed)
        feeds = [{k: v[i:i + b] for k, v in every.items()} for i in range(0, n, b)]
    runs = [[np.array(o) for o in session.run(session.prepare(f))] for f in feeds]
    return [np.concatenate([r[k] for r in runs]) if runs[0][k].ndim else runs[0][k]
            for k in range(len(runs[0]))]


def _dataset_outputs(session: Session, job: Job, path: str, b: int
                     ) -> tuple[np.ndarray, list[int]]:
    """The scored output (the first class-logits one) for every dataset item, in batches of
    b (the last one padded: some runtimes compile for a static batch), and each batch's
    latency.  An .npy holds images; an .npz one array per input."""
    io = job.model.io
    if path.endswith(".npz"):
        with np.load(path) as f:
            data = {i.name: f[i.name] for i in io.inputs}
    else:
        data = {io.inputs[0].name: np.load(path, mmap_mode="r")}
    scored = next((k for k, o in enumerate(io.outputs) if o.kind == "classes"), 0)
    n = len(next(iter(data.values())))
    outs, lat = [], []
    for i in range(0, n, b):
        feed = {}
        for name, a in data.items():
            chunk = np.ascontiguousarray(a[i:i + b])
            k = len(chunk)
            if k < b:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], b - k, axis=0)])
            feed[name] = chunk
        t0 = time.perf_counter_ns()
        out = session.run(session.prepare(feed))
        lat.append(time.perf_counter_ns() - t0)
        outs.append(np.array(out[scored], dtype=np.float32)[:k])
    logits = np.concatenate(outs)
    return (logits.reshape(n, -1) if io.image is not None else logits), lat


def run_job(job: Job) -> WorkerReport:
    stage = "setup"
    try:
        spec = job.spec
        if job.pin:
            _pin(spec.threads)
        runtime = get(spec.runtime)()
        precision = variant(runtime, spec.variant).precision
        if job.mode == "convert":
            stage = "conversion"
            per_shape = ({"shapes": job.model.io.bind(spec.batch, dict(spec.dims))}
                         if converts_per_shape(runtime, job.model) else {})
            how = runtime.convert(job.model, spec.variant, **per_shape)  # type: ignore[attr-defined]
            return WorkerReport(status="ok", runtime_version=runtime.version(),
                                precision=precision, settings={"conversion": how})
        # Inputs first: numpy.random's extension modules must not count as runtime libraries.
        stage = "inputs"
        shapes = job.model.io.bind(spec.batch, dict(spec.dims))
        feeds = _feeds(job, shapes)
        before = mapped_libraries()
        stage = "load"
        t0 = time.perf_counter_ns()
        session = runtime.load(job.model, LoadOptions(spec.variant, spec.threads, spec.batch,
                                                      spec.device, tuple(shapes.items())))
        load_s = (time.perf_counter_ns() - t0) / 1e9
        rss_after_load, hwm_after_load = rss_mb(), peak_rss_mb()
        settings = dict(session.info())
        if job.mode == "accuracy":
            stage = "accuracy"
            assert job.dataset_path and job.outputs_path
            logits, lat = _dataset_outputs(session, job, job.dataset_path, spec.batch)
            np.save(job.outputs_path, logits)
            return WorkerReport(status="ok", runtime_version=runtime.version(),
                                precision=precision, settings=settings, load_s=load_s,
                                samples_ns=tuple(lat), peak_rss_mb=peak_rss_mb(),
                                has_outputs=True)

        stage = "first inference"
        t0 = time.perf_counter_ns()
        outputs = session.run(session.prepare(feeds[0]))
        first_ns = time.perf_counter_ns() - t0
        warmup: list[int] = []
        loop = None
        other_load = None
        device_ns: tuple[int, ...] = ()
        device_mb: dict[str, float] = {}
        if job.mode == "measure":
            stage = "measurement"
            # Round-robin over the samples; an image's uint8 -> runtime conversion is timed
            # (unless --no-preprocess); other inputs arrive already in the runtime's form.
            if job.preprocess_timed and job.model.io.has_image:
                host = itertools.cycle(feeds)

                def call() -> object:
                    return session.run(session.prepare(next(host)))
            else:
                ready = itertools.cycle([session.prepare(f) for f in feeds])

                def call() -> object:
                    return session.run(next(ready))
            cap_ns = job.length.warmup_max_s * 1e9
            for _ in range(job.length.warmup):
                if warmup and cap_ns and sum(warmup) >= cap_ns:
                    break
                t0 = time.perf_counter_ns()
                call()
                warmup.append(time.perf_counter_ns() - t0)
            reset = getattr(session, "reset_device_samples", None)
            if reset:  # device timings of the measured runs only
                reset()
            probe = LoadProbe().start()
            loop = single_stream(call, job.length)
            other_load = probe.other_load()
            if hasattr(session, "device_samples_ns"):
                device_ns = tuple(session.device_samples_ns())
            if hasattr(session, "device_memory_mb"):
                device_mb = dict(session.device_memory_mb())
        has_outputs = False
        note = getattr(runtime, "integrity_note", None)  # outputs not comparable, and why
        if note:
            settings["integrity"] = note
        elif job.outputs_path and len(outputs) > 0:
            stage = "integrity"
            np.savez(job.outputs_path, *_integrity_outputs(session, job, feeds))
            has_outputs = True
        stage = "report"
        report = WorkerReport(
            status="ok", runtime_version=runtime.version(), precision=precision,
            settings=settings, load_s=load_s, first_ns=first_ns, warmup_ns=tuple(warmup),
            samples_ns=loop.samples_ns if loop else (),
            stop_reason=loop.stop_reason if loop else "",
            other_load=other_load, rss_after_load_mb=rss_after_load,
            peak_rss_after_load_mb=hwm_after_load, peak_rss_mb=peak_rss_mb(),
            libraries=runtime_libraries(before, mapped_libraries()), has_outputs=has_outputs,
            cpu_affinity=tuple(sorted(os.sched_getaffinity(0))), device_samples_ns=device_ns,
            device_memory_mb=device_mb)
        session.close()
        return report
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)  # the full story goes to the cell's log file
        return WorkerReport(status="failed", error=failure(stage, exc, job.spec.batch))


def main() -> None:
    job = from_dict(Job, json.load(sys.stdin))
    finish(job.report_path, run_job(job))


if __name__ == "__main__":
    main()
