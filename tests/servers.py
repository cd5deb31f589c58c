"""`inferometer serve` started as a user starts it, on free loopback ports, for the tests."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

TESTS = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    proc: subprocess.Popen
    http: int
    grpc: int
    model: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http}/v2/models/{self.model}"

    def get(self, path: str) -> tuple[int, dict]:
        c = http.client.HTTPConnection("127.0.0.1", self.http, timeout=30)
        try:
            c.request("GET", path)
            r = c.getresponse()
            body = r.read()
            ctype = r.getheader("content-type", "")
            return r.status, (json.loads(body) if "json" in ctype else {"text": body.decode()})
        finally:
            c.close()

    def post(self, path: str, body: bytes, headers: dict[str, str] | None = None
             ) -> tuple[int, dict[str, str], bytes]:
        c = http.client.HTTPConnection("127.0.0.1", self.http, timeout=60)
        try:
            c.request("POST", path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()

    def instances(self) -> list[psutil.Process]:
        return [p for p in psutil.Process(self.proc.pid).children(recursive=True)
                if "inferometer._serve" in " ".join(p.cmdline())]


def wait_ready(server: Server, seconds: float, what: str = "serve") -> None:
    """Until the server says its model is ready; its exit or the deadline fails the test."""
    deadline = time.monotonic() + seconds
    while True:
        if server.proc.poll() is not None:
            stderr = server.proc.stderr.read() if server.proc.stderr else ""
            raise AssertionError(f"{what} exited {server.proc.returncode}: {stderr}")
        try:
            if server.get(f"/v2/models/{server.model}/ready")[0] == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not become ready in {seconds:g} s")
        time.sleep(0.2)


def env(**extra: str) -> dict[str, str]:
    from conftest import FAKES

    return {**os.environ, "INFEROMETER_RUNTIMES": FAKES,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS),
                                                        os.environ.get("PYTHONPATH")])),
            **extra}


@contextmanager
def serving(logs: Path, *args: str, model: str = "tinynet", runtime: str = "echo",
            extra_env: dict[str, str] | None = None, from_run: Path | None = None,
            name: str | None = None) -> Iterator[Server]:
    """`name`: the served model's name when `model` is a file path (its stem)."""
    hp, gp = free_port(), free_port()
    what = ["--from", str(from_run)] if from_run else [model, "--runtime", runtime]
    cmd = [sys.executable, "-m", "inferometer", "serve", *what,
           "--port", str(hp), "--grpc-port", str(gp), "--logs", str(logs), *args]
    proc = subprocess.Popen(cmd, env=env(**(extra_env or {})), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    server = Server(proc, hp, gp, name or model)
    try:
        wait_ready(server, 180)
        yield server
    finally:
        kids = psutil.Process(proc.pid).children(recursive=True) if proc.poll() is None else []
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        psutil.wait_procs(kids, timeout=30)
        for k in kids:
            if k.is_running() and k.status() != psutil.STATUS_ZOMBIE:
                k.kill()
