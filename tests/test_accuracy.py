"""Datasets, preprocessing and the precision table, end to end on real labelled data."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import cli
from PIL import Image

from inferometer.datasets import DatasetError, load
from inferometer.models.io import image_io
from inferometer.models.ref import ModelRef

M224 = ModelRef("m", "", image_io("input", (3, 224, 224)), (0, 0, 0), (1, 1, 1), "")


def _image(path: Path, color: tuple[int, int, int], size: tuple[int, int] = (300, 240)) -> None:
    Image.new("RGB", size, color).save(path)


def _imagenet_tree(root: Path, n: int = 6) -> list[int]:
    root.mkdir()
    labels = [i % 3 for i in range(n)]
    lines = []
    for i, y in enumerate(labels):
        name = f"ILSVRC2012_val_{i + 1:08d}.JPEG"
        _image(root / name, (80 * y, 20, 200 - 50 * y))
        lines.append(f"{name} {y}")
    (root / "val_map.txt").write_text("\n".join(lines) + "\n")
    return labels


def test_imagenet_layout_loads_resizes_and_crops(tmp_path: Path) -> None:
    labels = _imagenet_tree(tmp_path / "val")
    data = load(f"imagenet:{tmp_path / 'val'}", M224)
    assert data.images.shape == (6, 224, 224, 3) and data.images.dtype == np.uint8
    assert data.labels.tolist() == labels
    # a flat-colour image stays that colour after resize + centre crop (JPEG rounds a little)
    assert np.abs(data.images[1, 112, 112].astype(int) - (80, 20, 150)).max() <= 3
    assert load(f"imagenet:{tmp_path / 'val'}", M224, limit=4).labels.tolist() == labels[:4]


def test_folder_layout_numbers_classes_in_sorted_order(tmp_path: Path) -> None:
    for cls, color in (("cat", (255, 0, 0)), ("dog", (0, 255, 0))):
        (tmp_path / cls).mkdir()
        for i in range(2):
            _image(tmp_path / cls / f"{i}.png", color)
    data = load(f"folder:{tmp_path}", M224)
    assert sorted(data.labels.tolist()) == [0, 0, 1, 1]
    assert all(tuple(img[0, 0]) == ((255, 0, 0) if y == 0 else (0, 255, 0))
               for img, y in zip(data.images, data.labels, strict=True))


def test_bad_datasets_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        load(f"imagenet:{tmp_path / 'nope'}", M224)
    with pytest.raises(DatasetError, match=r"no val_map\.txt"):
        load(f"imagenet:{tmp_path}", M224)
    (tmp_path / "val_map.txt").write_text("")
    with pytest.raises(DatasetError, match="lists no images"):
        load(f"imagenet:{tmp_path}", M224)
    (tmp_path / "val_map.txt").write_text("missing.JPEG 3\n")
    with pytest.raises(DatasetError, match="listed but not in"):
        load(f"imagenet:{tmp_path}", M224)
    (tmp_path / "val_map.txt").write_text("a.JPEG\n")
    with pytest.raises(DatasetError, match="expected 'FILE LABEL'"):
        load(f"imagenet:{tmp_path}", M224)
    for i in range(3):
        (tmp_path / f"{i}.JPEG").write_bytes(b"not an image")
    (tmp_path / "val_map.txt").write_text("".join(f"{i}.JPEG {i}\n" for i in range(3)))
    with pytest.raises(DatasetError, match="3 of 3 images failed to decode"):
        load(f"imagenet:{tmp_path}", M224)
    with pytest.raises(DatasetError, match=r"not digits, imagenet:DIR, folder:DIR or npz:FILE"):
        load("cifar", M224)


def test_digits_precision_table_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "acc"
    r = cli("accuracy", "digits", "--runtimes", "onnxruntime,openvino,torch",
            "--precisions", "fp32,bf16,int8", "--output", str(out))
    assert r.returncode == 0, r.stderr
    assert "precision table: digits on digits" in r.stdout
    data = json.loads((out / "results.json").read_text())
    assert data["kind"] == "accuracy" and data["items"] == 360
    rows = {(x["runtime"], x["precision"]): x for x in data["rows"]}
    for rt in ("onnxruntime", "openvino", "torch"):
        fp32 = rows[(rt, "fp32")]
        assert fp32["status"] == "ok" and fp32["top1"] >= 95.0, fp32
        assert fp32["differ_from_reference"] <= 1
    assert rows[("onnxruntime", "int8")]["status"] == "ok"
    assert rows[("onnxruntime", "int8")]["top1"] >= 90.0
    assert rows[("openvino", "bf16")]["status"] == "ok"
    assert rows[("openvino", "int8")]["status"] == "ok"  # NNCF, calibrated on the train split
    assert rows[("openvino", "int8")]["top1"] >= 90.0
    assert rows[("torch", "bf16")]["top1"] >= 90.0
    assert rows[("torch", "int8")]["status"] == "ok"  # PT2E through torchao
    assert rows[("torch", "int8")]["top1"] >= 90.0
    shown = cli("show", str(out))
    assert shown.returncode == 0 and "precision table" in shown.stdout


def test_accuracy_on_an_imagenet_tree_through_the_cli(tmp_path: Path) -> None:
    _imagenet_tree(tmp_path / "val", n=4)
    out = tmp_path / "acc"
    r = cli("accuracy", "tinynet", "--dataset", f"imagenet:{tmp_path / 'val'}",
            "--runtimes", "onnxruntime", "--precisions", "fp32", "--output", str(out))
    assert r.returncode == 0, r.stderr
    row = json.loads((out / "results.json").read_text())["rows"][0]
    assert row["status"] == "ok" and 0.0 <= row["top1"] <= 100.0
    assert row["differ_from_reference"] == 0
    # onnxruntime fp32 is the reference: the dataset went through it once, not twice
    assert r.stderr.count("running onnxruntime/default on 4 items") == 1
    assert [p.name for p in (out / "logs").iterdir()] == ["onnxruntime.default.log"]
    bad = cli("accuracy", "tinynet", "--dataset", f"imagenet:{tmp_path / 'none'}",
              "--output", str(tmp_path / "x"))
    assert bad.returncode == 2 and "does not exist" in bad.stderr
    assert not (tmp_path / "x").exists()


def test_a_model_without_class_scores_is_refused_up_front(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 16, 16])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
              tmp_path / "identity.onnx")
    r = cli("accuracy", str(tmp_path / "identity.onnx"), "--dataset", "digits",
            "--output", str(tmp_path / "x"))
    assert r.returncode == 2
    assert "outputs tensor values, not a class vector" in r.stderr
    assert not (tmp_path / "x").exists()


def test_a_cuda_precision_table_runs_each_precision_s_cuda_variant(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Which jobs `accuracy --device cuda` sends, with the workers stood in for (no GPU
    here): the reference on the CPU, each precision's CUDA variant on the device."""
    from inferometer import scoring as accuracy
    from inferometer.datasets import Dataset
    from inferometer.results.schema import WorkerReport

    monkeypatch.setattr(importlib.metadata, "version",  # as if torch were a CUDA build
                        lambda d, real=importlib.metadata.version:
                        "2.11.0+cu130" if d == "torch" else real(d))
    labels = np.array([0, 1, 2, 1])
    sent = []

    def worker(job, log, timeout_s, python=None):  # type: ignore[no-untyped-def]
        sent.append((job.spec.runtime, job.spec.variant, job.spec.device))
        np.save(job.outputs_path, np.eye(3)[labels] + 0.1 * (job.spec.variant == "fp16"))
        return WorkerReport(status="ok", samples_ns=(1000, 1000))

    monkeypatch.setattr(accuracy, "spawn_worker", worker)
    images = np.zeros((4, 16, 16, 3), np.uint8)
    data = Dataset("t", images, labels, 0, images, "note")
    rows, reference = accuracy.run(M224, data, ["torch"], ["fp32", "fp16", "int8"], batch=1,
                                   threads=None, out=tmp_path, timeout_s=60, max_drop=1.0,
                                   on_line=lambda s: None, device="cuda")
    assert sent == [("onnxruntime", "default", "cpu"), ("torch", "eager", "cuda"),
                    ("torch", "fp16", "cuda")]
    assert reference == "onnxruntime fp32 on the CPU"
    assert [(r.precision, r.variant, r.status) for r in rows] == [
        ("fp32", "eager", "ok"), ("fp16", "fp16", "ok"), ("int8", "-", "n/a")]
    assert rows[1].top1 == 100.0 and rows[1].differ_from_reference == 0
    assert rows[2].note == "torch has no int8 variant on cuda"
