"""Training-step worker: `python -m inferometer._train < job.json`.

One fresh process per configuration, like the inference worker.  Each iteration is timed in
three phases, forward (with the loss), backward and optimizer update, and as a total.  On the
CPU the phases are synchronous and the host clock brackets them; on CUDA, events are recorded
between the phases and read after one synchronisation per iteration, so the phase split costs
no extra host round trips.  The loss on the fixed batch is kept: a step that does not lower it
over the run did not train (integrity for training)."""

from __future__ import annotations

import importlib
import json
import sys
import time
import traceback
from typing import Any

from ._child import failure, finish
from .jobs import TrainJob
from .measure.gpu import torch_memory_mb
from .measure.memory import peak_rss_mb
from .results.codec import from_dict
from .results.trainrun import TrainReport


def _optimizer(torch: Any, name: str, params: Any) -> Any:
    if name == "sgd":
        return torch.optim.SGD(params, lr=0.01, momentum=0.9)
    if name == "adam":
        return torch.optim.Adam(params, lr=1e-4)
    return torch.optim.AdamW(params, lr=1e-4)


def run_job(job: TrainJob) -> TrainReport:
    stage = "setup"
    try:
        import torch

        if job.threads is not None:
            torch.set_num_threads(job.threads)
        dev = torch.device(job.device)
        torch.manual_seed(0)
        module, _, fn = job.model.torch_builder.partition(":")  # type: ignore[union-attr]
        stage = "load"
        net = getattr(importlib.import_module(module), fn)()
        net.load_state_dict(torch.load(job.model.torch_weights, weights_only=True))
        fmt = torch.channels_last if job.channels_last else torch.contiguous_format
        net = net.to(dev, memory_format=fmt).train()
        opt = _optimizer(torch, job.optimizer, net.parameters())
        x = torch.randn(job.batch, *job.model.input_shape, device=dev).contiguous(
            memory_format=fmt)
        with torch.no_grad():
            classes = net.eval()(x[:1]).shape[-1]
        net.train()
        y = torch.randint(0, classes, (job.batch,), device=dev)
        loss_fn = torch.nn.CrossEntropyLoss()
        cuda = dev.type == "cuda"
        # AMP: fp16 with loss scaling on CUDA (the classic recipe), bf16 on the CPU (no
        # scaling needed: bf16 has fp32's exponent range).
        amp_dtype = torch.float16 if cuda else torch.bfloat16
        scaler = torch.amp.GradScaler("cuda", enabled=job.amp and cuda)

        def step(record: Any) -> float:
            record(0)
            with torch.autocast(dev.type, amp_dtype, enabled=job.amp):
                loss = loss_fn(net(x), y)
            record(1)
            scaler.scale(loss).backward()
            record(2)
            scaler.step(opt)
            scaler.update()
            opt.zero_grad(set_to_none=True)
            record(3)
            return loss

        if cuda:
            events = [torch.cuda.Event(enable_timing=True) for _ in range(4)]

            def timed() -> tuple[list[int], float]:
                loss = step(lambda i: events[i].record())
                torch.cuda.synchronize()
                ms = [events[i].elapsed_time(events[i + 1]) for i in range(3)]
                return [int(m * 1e6) for m in ms], float(loss)
        else:
            marks = [0, 0, 0, 0]

            def mark(i: int) -> None:
                marks[i] = time.perf_counter_ns()

            def timed() -> tuple[list[int], float]:
                loss = step(mark)
                return [marks[1] - marks[0], marks[2] - marks[1], marks[3] - marks[2]], \
                    float(loss)

        stage = "warm-up"
        losses = []
        for _ in range(job.warmup):
            losses.append(timed()[1])
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        stage = "measurement"
        phases: list[list[int]] = [[], [], []]
        totals = []
        for _ in range(job.iterations):
            t0 = time.perf_counter_ns()
            split, loss = timed()
            totals.append(time.perf_counter_ns() - t0)
            for i in range(3):
                phases[i].append(split[i])
            losses.append(loss)
        allocated, reserved = torch_memory_mb(torch) if cuda else (None, None)
        return TrainReport(
            status="ok", torch_version=torch.__version__,
            device_name=torch.cuda.get_device_name(dev) if cuda else "cpu",
            forward_ns=tuple(phases[0]), backward_ns=tuple(phases[1]),
            update_ns=tuple(phases[2]), total_ns=tuple(totals), losses=tuple(losses),
            num_threads=torch.get_num_threads(), peak_rss_mb=peak_rss_mb(),
            gpu_peak_allocated_mb=allocated, gpu_peak_reserved_mb=reserved)
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        return TrainReport(status="failed", error=failure(stage, exc, job.batch))


def main() -> None:
    job = from_dict(TrainJob, json.load(sys.stdin))
    finish(job.report_path, run_job(job))


if __name__ == "__main__":
    main()
