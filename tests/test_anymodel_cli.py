"""Any model through the CLI as a user runs it: a two-input ONNX file with a dynamic batch, a
rank-3 transformer block, a token model from the zoo, a torch.export program and a traced
TorchScript module, each with only the flags `inspect` says are needed; bad input is one line
and exit 2."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import QUICK, cli
from onnx_models import block_model, two_input_model

pytest.importorskip("onnxruntime")


def _results(out: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((out / "results.json").read_text())


def test_inspect_says_what_to_bind(tmp_path: Path) -> None:
    model = two_input_model(tmp_path / "two.onnx")
    p = cli("inspect", str(model))
    assert p.returncode == 0, p.stderr
    text = p.stdout
    assert "ids" in text and "int64" in text and "tokens [0, 100)" in text
    assert "seq: must be bound: --dim seq=N" in text
    assert f"run it: inferometer run {model} --dim seq=N" in text  # a command to copy


def test_two_input_model_runs_on_ort_and_openvino(tmp_path: Path) -> None:
    pytest.importorskip("openvino")
    model = two_input_model(tmp_path / "two.onnx")
    out = tmp_path / "run"
    p = cli("run", str(model), "--runtimes", "onnxruntime,openvino", "--threads", "1",
            "--batch", "1,2", "--dim", "seq=4,9", *QUICK, "--output", str(out))
    assert p.returncode == 0, p.stderr[-3000:]
    cells = _results(out)["cells"]
    assert len(cells) == 8
    assert {tuple(map(tuple, c["spec"]["dims"])) for c in cells} == {(("seq", 4),),
                                                                    (("seq", 9),)}
    for c in cells:
        assert c["status"] == "ok" and c["integrity"]["passed"], c
        assert [o["name"] for o in c["integrity"]["outputs"]] == ["logits", "embedded"]
        assert c["timed_region"].startswith("inference only")
    assert "== two seq=4" in p.stdout and "== two seq=9" in p.stdout
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert {r["dims"] for r in rows} == {"seq=4", "seq=9"}
    model_info = _results(out)["models"][0]
    assert [i["name"] for i in model_info["inputs"]] == ["x", "ids"]


def test_dry_run_counts_a_reference_per_cell_shape(tmp_path: Path) -> None:
    pytest.importorskip("openvino")
    p = cli("run", str(two_input_model(tmp_path / "two.onnx")), "--runtimes",
            "onnxruntime,openvino", "--threads", "1", "--batch", "1,2", "--dim", "seq=4,9",
            "--dry-run")
    assert p.returncode == 0, p.stderr
    header, _, *rows = p.stdout.splitlines()
    assert header.split() == ["model", "runtime/variant", "device", "threads", "batch", "dims",
                              "cells"]
    assert rows[0].split()[1:] == ["onnxruntime/default", "cpu", "1", "1,2", "seq=4,9", "4"]
    # the integrity reference runs once per (batch, seq): four shapes, not two batch sizes
    assert "8 cells x 2 to 5 fresh worker processes each = 16 to 40 processes" in p.stdout
    assert "scheduled interleaved; before them 4 reference run(s)" in p.stdout


def test_rank3_block_with_only_the_flags_inspect_names(tmp_path: Path) -> None:
    pytest.importorskip("openvino")
    model = block_model(tmp_path / "block.onnx")
    said = cli("inspect", str(model)).stdout
    flags = said.rsplit(f"run it: inferometer run {model}", 1)[1].split()
    assert flags == ["--dim", "seq=N"]
    out = tmp_path / "run"
    p = cli("run", str(model), "--runtimes", "onnxruntime,openvino", "--threads", "1",
            "--dim", "seq=6", *QUICK, "--output", str(out))
    assert p.returncode == 0, p.stderr[-3000:]
    cells = _results(out)["cells"]
    assert len(cells) == 2 and all(c["status"] == "ok" and c["integrity"]["passed"]
                                   for c in cells)
    # the OpenVINO form: the same shape fixed in the description instead of swept
    p = cli("run", str(model), "--runtimes", "onnxruntime", "--threads", "1",
            "--shape", "h[1,6,16]", *QUICK, "--output", str(tmp_path / "r2"))
    assert p.returncode == 0, p.stderr[-3000:]


def test_loadtest_and_seed_on_a_token_model(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    out = tmp_path / "lt"
    p = cli("loadtest", "tinybert", "--runtime", "onnxruntime", "--scenario", "offline",
            "--queries", "16", "--batch", "4", "--dim", "seq=8", "--duration", "0.3s",
            "--output", str(out))
    assert p.returncode == 0, p.stderr[-3000:]
    data = _results(out)
    assert data["model"]["inputs"][0]["name"] == "input_ids"
    assert data["scan"] and all(s["step"]["achieved_qps"] > 0 for s in data["scan"])
    # --seed changes the generated inputs, so the outputs change; the same seed repeats them
    runs = []
    for seed, name in ((1, "a"), (1, "b"), (2, "c")):
        p = cli("run", "tinybert", "--runtimes", "onnxruntime", "--threads", "1", "--seed",
                str(seed), *QUICK, "--output", str(tmp_path / name))
        assert p.returncode == 0, p.stderr[-3000:]
        (ref,) = (tmp_path / name / "outputs").glob("reference.*.npz")
        with np.load(ref) as f:
            runs.append(f["arr_0"])
    assert np.array_equal(runs[0], runs[1]) and not np.allclose(runs[0], runs[2])


@pytest.mark.parametrize(("extra", "message"), [
    ((), "dim 'seq' unbound; bind it with --dim seq=N"),
    (("--dim", "len=4"), "--dim len: no model has a dim 'len'; valid: batch, seq"),
    (("--shape", "nope:1x4"), "--shape: no model has an input 'nope'; inputs: ids, x"),
    (("--dim", "seq=4", "--value-range", "ids:0.5,3"), "not a range of whole int64"),
    (("--batch", "1", "--dim", "batch=2"), "is the batch dim: give it once"),
])
def test_bad_bindings_are_one_line(tmp_path: Path, extra: tuple, message: str) -> None:
    model = two_input_model(tmp_path / "two.onnx")
    p = cli("run", str(model), "--runtimes", "onnxruntime", "--threads", "1", *extra,
            "--output", str(tmp_path / "run"))
    assert p.returncode == 2, p.stderr
    assert message in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "run").exists()


def test_real_inputs_round_robin_and_checked(tmp_path: Path) -> None:
    model = two_input_model(tmp_path / "two.onnx")
    data = tmp_path / "samples.npz"
    rng = np.random.default_rng(0)
    np.savez(data, x=rng.standard_normal((3, 1, 8)).astype(np.float32),
             ids=rng.integers(0, 100, (3, 1, 5)))
    out = tmp_path / "run"
    p = cli("run", str(model), "--runtimes", "onnxruntime", "--threads", "1",
            "--inputs", str(data), *QUICK, "--output", str(out))
    assert p.returncode == 0, p.stderr[-3000:]
    (cell,) = _results(out)["cells"]
    assert cell["status"] == "ok" and cell["spec"]["batch"] == 1
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((1, 8), np.float32))
    p = cli("run", str(model), "--runtimes", "onnxruntime", "--inputs", str(bad),
            "--output", str(tmp_path / "r2"))
    assert p.returncode == 2 and "no array for input(s) ids" in p.stderr
    np.savez(bad, x=np.zeros((1, 8), np.float64), ids=np.zeros((1, 5), np.int64))
    p = cli("run", str(model), "--runtimes", "onnxruntime", "--inputs", str(bad),
            "--output", str(tmp_path / "r3"))
    assert p.returncode == 2 and "'x' is float64, the model wants float32" in p.stderr
    assert not (tmp_path / "r3").exists()


@pytest.mark.parametrize("preprocess", [True, False])
def test_every_sample_is_used_round_robin(tmp_path: Path, fakes, monkeypatch,  # type: ignore[no-untyped-def]
                                          tiny, preprocess: bool) -> None:
    """The measured runs cycle through all the samples of --inputs, on the timed-conversion
    path of an image model and on the prepared path of any other."""
    record = tmp_path / "seen.jsonl"
    monkeypatch.setenv("INFEROMETER_TEST_RECORD", str(record))
    rng = np.random.default_rng(1)
    if preprocess:
        model = tiny.onnx_path
        data = {"input": rng.integers(0, 256, (3, 1, 32, 32, 3), dtype=np.uint8)}
    else:
        model = str(two_input_model(tmp_path / "two.onnx"))
        data = {"x": rng.standard_normal((3, 1, 8)).astype(np.float32),
                "ids": rng.integers(0, 100, (3, 1, 5))}
    np.savez(tmp_path / "d.npz", **data)
    p = cli("run", model, "--runtimes", "recorder", "--threads", "1", "--inputs",
            str(tmp_path / "d.npz"), *QUICK, "--repeat", "1", "--output", str(tmp_path / "r"))
    assert p.returncode == 0, p.stderr[-3000:]
    (seen,) = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(seen) >= 6 and len(set(seen)) == 3, seen
    assert seen[1:4] != [seen[1]] * 3  # consecutive runs take the next sample


def test_token_model_from_the_zoo(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    out = tmp_path / "run"
    p = cli("run", "tinybert", "--runtimes", "onnxruntime,torch", "--variants",
            "default,int8_dynamic,eager", "--threads", "1", "--dim", "seq=8", *QUICK,
            "--output", str(out))
    assert p.returncode == 0, p.stderr[-3000:]
    cells = {c["spec"]["variant"]: c for c in _results(out)["cells"]}
    assert set(cells) == {"default", "int8_dynamic", "eager"}
    assert all(c["integrity"]["passed"] for c in cells.values()), cells
    assert cells["int8_dynamic"]["precision"] == "int8"
    assert cells["int8_dynamic"]["integrity"]["cosine"] < 1.0  # really quantised


def test_torch_int8_runs_at_every_swept_length(tmp_path: Path) -> None:
    """PT2E exports a graph specialised to one shape: each cell calibrates at its own (a
    seq-12 cell once failed its shape guard after calibrating at seq 8)."""
    pytest.importorskip("transformers")
    out = tmp_path / "run"
    p = cli("run", "tinybert", "--runtimes", "torch:int8", "--threads", "1", "--dim",
            "seq=8,12", *QUICK, "--repeat", "1", "--output", str(out))
    assert p.returncode == 0, p.stderr[-3000:]
    cells = _results(out)["cells"]
    assert len(cells) == 2 and all(c["status"] == "ok" and c["integrity"]["passed"]
                                   for c in cells), cells


def _two_output_net(torch: Any) -> Any:
    """A module with token ids and a float input, and two outputs; seeded."""
    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding(30, 8)
            self.fc = torch.nn.Linear(8, 3)

        def forward(self, ids: torch.Tensor, scale: torch.Tensor) -> tuple:
            h = self.emb(ids)
            return self.fc(h.mean(1)) * scale, h

    torch.manual_seed(0)
    return Net


def test_torch_export_program(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxscript")

    Net = _two_output_net(torch)
    batch = torch.export.Dim("batch", min=1, max=64)
    seq = torch.export.Dim("seq", min=2, max=256)
    ep = torch.export.export(Net().eval(), (torch.zeros(2, 4, dtype=torch.long),
                                            torch.ones(2, 1)),
                             dynamic_shapes={"ids": {0: batch, 1: seq}, "scale": {0: batch}})
    path = tmp_path / "mine.pt2"
    torch.export.save(ep, str(path))
    p = cli("inspect", str(path))
    assert p.returncode == 0, p.stderr
    assert "ids" in p.stdout and "--dim" in p.stdout
    assert "torchvision" not in p.stderr  # the exporter's log of ops it skipped, silenced
    dim = next(line.split(":")[0].strip() for line in p.stdout.splitlines()
               if "must be bound" in line)
    out = tmp_path / "run"
    p = cli("run", str(path), "--runtimes", "torch,onnxruntime", "--threads", "1",
            "--dim", f"{dim}=6", *QUICK, "--output", str(out))
    assert p.returncode == 0, p.stderr[-3000:]
    cells = _results(out)["cells"]
    assert {c["spec"]["runtime"] for c in cells} == {"torch", "onnxruntime"}
    assert all(c["status"] == "ok" and c["integrity"]["passed"] for c in cells), cells
    pickled = tmp_path / "model.pt"
    pickled.write_bytes(b"junk")
    p = cli("run", str(pickled), "--runtimes", "onnxruntime")
    assert p.returncode == 2 and "torch.export.save" in p.stderr


def test_torchscript_module(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")

    net = _two_output_net(torch)().eval()
    traced = tmp_path / "traced.pt"
    torch.jit.save(torch.jit.trace(net, (torch.zeros(2, 4, dtype=torch.long),
                                         torch.ones(2, 1))), str(traced))
    p = cli("inspect", str(traced))
    assert p.returncode == 0, p.stderr
    assert "[batch,4]" in p.stdout and "tokens [0, 30)" in p.stdout, p.stdout
    assert "output_1" in p.stdout and "[batch,4,8]" in p.stdout
    out = tmp_path / "run"
    p = cli("run", str(traced), "--runtimes", "torch,onnxruntime", "--threads", "1",
            "--batch", "1,3", *QUICK, "--output", str(out))
    assert p.returncode == 0, p.stderr[-3000:]
    cells = _results(out)["cells"]
    assert {(c["spec"]["runtime"], c["spec"]["batch"]) for c in cells} == {
        ("torch", 1), ("torch", 3), ("onnxruntime", 1), ("onnxruntime", 3)}
    assert all(c["status"] == "ok" and c["integrity"]["passed"] for c in cells), cells

    scripted = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(net), str(scripted))
    p = cli("inspect", str(scripted))
    assert p.returncode == 2 and "keeps no example inputs" in p.stderr, p.stderr
    pickled = tmp_path / "weights.pt"
    torch.save(net.state_dict(), str(pickled))
    p = cli("inspect", str(pickled))
    assert p.returncode == 2 and "pickled PyTorch files (torch.save)" in p.stderr, p.stderr


def test_torchscript_traced_inputs_are_read_without_running_the_file(tmp_path: Path) -> None:
    import os
    import pickle
    import zipfile

    from inferometer.errors import ModelError
    from inferometer.models.torchscript import traced_inputs

    class Evil:
        def __reduce__(self) -> tuple:
            return (os.system, (f"touch {tmp_path / 'ran'}",))

    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("evil/code/__torch__.py", "")
        z.writestr("evil/constants.pkl", b"")
        z.writestr("evil/traced_inputs.pkl", pickle.dumps({"forward": [Evil()]}))
    with pytest.raises(ModelError, match="not plain tensors"):
        traced_inputs(path)
    assert not (tmp_path / "ran").exists()


def test_accuracy_on_an_npz_dataset_with_and_without_labels(tmp_path: Path) -> None:
    model = two_input_model(tmp_path / "two.onnx")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((12, 8)).astype(np.float32)
    ids = rng.integers(0, 100, (12, 5))
    unlabelled = tmp_path / "u.npz"
    np.savez(unlabelled, x=x, ids=ids)
    out = tmp_path / "acc"
    p = cli("accuracy", str(model), "--dataset", f"npz:{unlabelled}", "--runtimes",
            "onnxruntime", "--precisions", "fp32,int8", "--batch", "4", "--output", str(out))
    assert p.returncode == 0, p.stderr[-3000:]
    rows = {r["precision"]: r for r in _results(out)["rows"]}
    assert rows["fp32"]["top1"] is None and rows["fp32"]["agreement"] == 100.0
    assert rows["fp32"]["agreement_kind"] == "argmax %"
    assert 0 <= rows["int8"]["agreement"] <= 100
    assert "agrees with ref" in p.stdout and "12 items" in p.stdout
    labelled = tmp_path / "l.npz"
    np.savez(labelled, x=x, ids=ids, labels=rng.integers(0, 4, 12))
    p = cli("accuracy", str(model), "--dataset", f"npz:{labelled}", "--runtimes",
            "onnxruntime", "--precisions", "fp32", "--output", str(tmp_path / "acc2"))
    assert p.returncode == 0, p.stderr[-3000:]
    (row,) = _results(tmp_path / "acc2")["rows"]
    assert 0 <= row["top1"] <= 100 and row["agreement"] is None
    np.savez(labelled, x=x)
    p = cli("accuracy", str(model), "--dataset", f"npz:{labelled}", "--runtimes", "onnxruntime")
    assert p.returncode == 2 and "no array for input(s) ids" in p.stderr
