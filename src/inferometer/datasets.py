"""Labelled datasets for accuracy runs, decoded and preprocessed once by the orchestrator into
uint8 NHWC arrays that every runtime's worker reads (memory-mapped), so all runtimes see the
same pixels and the worker needs nothing beyond numpy.

    digits                the handwritten digits bundled with scikit-learn (held-out split)
    imagenet:DIR          ImageNet validation layout: images + val_map.txt ("file label")
    folder:DIR            one sub-folder per class, classes numbered in sorted order
    npz:FILE              any model: one array per input (items on the leading axis), and
                          optionally `labels` (one class per item); without labels the rows
                          report each precision's agreement with fp32

Preprocessing follows the references: resize the shorter side to size/0.875 (256 for 224,
342 for 299), centre-crop to the model's size; 112x112 face models are resized directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import UsageError
from .models.preprocess import CALIBRATION_SAMPLES
from .models.ref import ModelRef

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".JPEG", ".JPG", ".PNG")
MAX_BAD_FRACTION = 0.05  # images that fail to decode are skipped, up to this share


class DatasetError(UsageError):
    """A dataset that cannot be used as given."""


@dataclass(frozen=True)
class Dataset:
    name: str
    images: np.ndarray | None  # uint8 N x H x W x 3 (image datasets)
    labels: np.ndarray | None  # int64 N; None: no labels (agreement with fp32 only)
    skipped: int  # files that failed to decode
    calibration: np.ndarray | None  # uint8 images for int8 calibration (held apart)
    note: str
    inputs: dict[str, np.ndarray] | None = None  # npz datasets: items of every input

    @property
    def items(self) -> int:
        if self.labels is not None:
            return len(self.labels)
        return len(next(iter(self.inputs.values()))) if self.inputs else 0


def parse(spec: str) -> tuple[str, Path | None]:
    kind, _, path = spec.partition(":")
    if kind == "digits" and not path:
        return kind, None
    if kind in ("imagenet", "folder", "npz") and path:
        return kind, Path(path)
    raise DatasetError(f"--dataset: '{spec}' is not digits, imagenet:DIR, folder:DIR or "
                       "npz:FILE")


def _npz(path: Path, model: ModelRef, limit: int | None) -> tuple[Dataset, ModelRef]:
    """Items of every input on the leading axis (the model's batch dim); the other dims are
    fixed by the arrays (models.inputs checks them as it checks --inputs).  Returns the model
    with those dims bound."""
    from dataclasses import replace

    from .models.inputs import array_dims, check_samples

    if not path.is_file():
        raise DatasetError(f"--dataset npz:{path}: no such file")
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k][:limit] if limit else f[k] for k in f.files}
    io = model.io
    if io.batch_dim is None:
        raise DatasetError(f"model '{model.name}' has no batch dim to put dataset items on")
    source = f"--dataset npz:{path}"
    labels = arrays.pop("labels", None)
    bound = array_dims(io, arrays, source)  # one sample whose batch is every item
    inputs = {i.name: arrays[i.name] for i in io.inputs}
    n = len(next(iter(inputs.values())))
    if labels is not None and len(labels) != n:
        raise DatasetError(f"{source}: the arrays hold different numbers of items")
    check_samples(io, inputs, io.bind(n, bound), source)  # dtypes
    model = replace(model, io=io.substitute({k: v for k, v in bound.items()
                                             if k in io.dims()}))
    if labels is not None:
        labels = labels.astype(np.int64)
    note = (f"{n} items from {path}" + (", labelled" if labels is not None else
                                       ", no labels: agreement with fp32 only")
            + f"; int8 calibrates on the first {CALIBRATION_SAMPLES} of them")
    return Dataset(f"npz:{path}", None, labels, 0, None, note, inputs), model


def _preprocess(path: Path, model: ModelRef) -> np.ndarray:
    from PIL import Image

    _, h, w = model.input_shape
    with Image.open(path) as im:
        im = im.convert("RGB")
        if h <= 112:  # face / small models: the crop is already the input
            im = im.resize((w, h), Image.BILINEAR)
        else:
            short = round(max(h, w) / 0.875)
            scale = short / min(im.size)
            im = im.resize((max(w, round(im.width * scale)), max(h, round(im.height * scale))),
                           Image.BILINEAR)
            left, top = (im.width - w) // 2, (im.height - h) // 2
            im = im.crop((left, top, left + w, top + h))
        return np.asarray(im, dtype=np.uint8)


def _decode(files: list[Path], labels: list[int], model: ModelRef,
            where: Path) -> tuple[np.ndarray, np.ndarray, int]:
    out, keep, bad = [], [], 0
    for f, y in zip(files, labels, strict=True):
        try:
            out.append(_preprocess(f, model))
            keep.append(y)
        except (OSError, ValueError):
            bad += 1
    if files and bad / len(files) > MAX_BAD_FRACTION:
        raise DatasetError(f"{where}: {bad} of {len(files)} images failed to decode "
                           f"(more than {MAX_BAD_FRACTION:.0%})")
    if not out:
        raise DatasetError(f"{where}: no image could be decoded")
    return np.stack(out), np.asarray(keep, np.int64), bad


def _imagenet(root: Path, limit: int | None) -> tuple[list[Path], list[int]]:
    vmap = root / "val_map.txt"
    if not vmap.is_file():
        raise DatasetError(f"{root}: no val_map.txt (ImageNet layout: images + val_map.txt)")
    files, labels = [], []
    for n, line in enumerate(vmap.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise DatasetError(f"{vmap}:{n}: expected 'FILE LABEL', got '{line.strip()}'")
        f = root / parts[0]
        if not f.is_file():
            raise DatasetError(f"{vmap}:{n}: {parts[0]} is listed but not in {root}")
        files.append(f)
        labels.append(int(parts[1]))
        if limit and len(files) >= limit:
            break
    if not files:
        raise DatasetError(f"{vmap} lists no images")
    return files, labels


def _folder(root: Path, limit: int | None) -> tuple[list[Path], list[int]]:
    classes = sorted(p for p in root.iterdir() if p.is_dir())
    if not classes:
        raise DatasetError(f"{root}: no class sub-folders (folder layout: DIR/CLASS/IMAGE)")
    files, labels = [], []
    for i, c in enumerate(classes):
        for f in sorted(c.iterdir()):
            if f.suffix in IMAGE_SUFFIXES:
                files.append(f)
                labels.append(i)
    if not files:
        raise DatasetError(f"{root}: the class folders hold no images")
    if limit:  # interleave classes so a limit keeps every class
        order = sorted(range(len(files)), key=lambda k: (files[k].name, labels[k]))
        files, labels = [files[k] for k in order[:limit]], [labels[k] for k in order[:limit]]
    return files, labels


def load_any(spec: str, model: ModelRef, limit: int | None = None
             ) -> tuple[Dataset, ModelRef]:
    """Any dataset, and the model as it runs on it (an npz fixes the model's dims)."""
    kind, root = parse(spec)
    if kind == "npz":
        assert root is not None
        return _npz(root, model, limit)
    if model.io.image is None:
        raise DatasetError(f"--dataset {spec} holds images; model '{model.name}' does not take "
                           "one image: give its inputs as --dataset npz:FILE")
    return load(spec, model, limit), model


def load(spec: str, model: ModelRef, limit: int | None = None,
         calibration: int = 64) -> Dataset:
    kind, root = parse(spec)
    if kind == "digits":
        from .models.arch.digits import digits_images, split

        if model.input_shape != (3, 16, 16):
            raise DatasetError(f"the digits dataset is 16x16; model '{model.name}' takes "
                               f"{'x'.join(map(str, model.input_shape))}")
        images, labels = digits_images()
        n = split()
        test_x, test_y = images[n:], labels[n:]
        if limit:
            test_x, test_y = test_x[:limit], test_y[:limit]
        return Dataset("digits", test_x, test_y, 0, images[:calibration],
                       f"held-out split ({len(test_y)} images); calibration from the "
                       "training split")
    assert root is not None
    if not root.is_dir():
        raise DatasetError(f"dataset directory {root} does not exist")
    files, labels = _imagenet(root, limit) if kind == "imagenet" else _folder(root, limit)
    images, y, bad = _decode(files, labels, model, root)
    return Dataset(f"{kind}:{root}", images, y, bad, images[:calibration],
                   f"{len(y)} images, {bad} skipped (decode errors); calibration on the first "
                   f"{min(calibration, len(y))} of them")
