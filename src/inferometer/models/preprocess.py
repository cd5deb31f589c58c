"""Fixed inputs, the uint8 HWC -> float NCHW conversion every image input starts from, and
the data int8 conversions calibrate on."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np

from .io import INPUT_SEED
from .ref import ModelRef

CALIBRATION_SAMPLES = 32


def make_images(n: int, height: int, width: int, seed: int = INPUT_SEED) -> np.ndarray:
    """n decoded RGB images, uint8 NHWC.  Image i depends only on (seed, i), so the first k
    images are the same at every batch size and integrity compares like with like."""
    out = np.empty((n, height, width, 3), np.uint8)
    for i in range(n):
        out[i] = np.random.default_rng((seed, i)).integers(0, 256, (height, width, 3), np.uint8)
    return out


class Normalizer:
    """(x/255 - mean)/std folded into one multiply-add, then NHWC -> NCHW (contiguous)."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        s = np.asarray(std, np.float32)
        self.scale = (1.0 / (255.0 * s)).astype(np.float32)
        self.shift = (-np.asarray(mean, np.float32) / s).astype(np.float32)

    @classmethod
    def of(cls, model: ModelRef) -> Normalizer:
        return cls(model.mean, model.std)

    def nhwc(self, batch: np.ndarray) -> np.ndarray:
        return batch.astype(np.float32) * self.scale + self.shift

    def nchw(self, batch: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(self.nhwc(batch).transpose(0, 3, 1, 2))


class ModelArrays:
    """Host feed -> the arrays the model's graph takes: image inputs normalised to float NCHW
    (the timed conversion), every other input as it is (already the model's dtype)."""

    def __init__(self, model: ModelRef) -> None:
        self._norm = Normalizer.of(model)
        self._images = {i.name for i in model.io.inputs if i.is_image}

    def __call__(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: self._norm.nchw(v) if k in self._images else v for k, v in feed.items()}


def calibration_images(model: ModelRef, n: int = CALIBRATION_SAMPLES) -> tuple[np.ndarray, str]:
    """The images int8 conversions of an image model calibrate on, and a short id of them for
    cache keys."""
    if model.calibration:
        images = np.load(model.calibration)
    else:
        images = make_images(n, *model.input_shape[1:], seed=INPUT_SEED + 1)
    return images, hashlib.sha256(images.tobytes()).hexdigest()[:12]


def calibration_batches(model: ModelRef, batch: int) -> list[np.ndarray]:
    """The calibration images as normalised float32 NCHW batches of `batch` images (repeated
    to fill one batch when there are fewer), for converters calibrated at a fixed shape."""
    images, _ = calibration_images(model)
    if len(images) < batch:
        images = np.resize(images, (batch, *images.shape[1:]))
    norm = Normalizer.of(model)
    return [norm.nchw(images[i:i + batch]) for i in range(0, len(images) - batch + 1, batch)]


def calibration_feeds(model: ModelRef, batch: int = 1,
                      dims: Mapping[str, int] | None = None) -> tuple[list[dict], str]:
    """Calibration data for any model, as model arrays (images normalised), `batch` items per
    feed, at `dims` (default: the model's calibration dims), and an id for cache keys: the
    image model's calibration images; otherwise a dataset's or the user's --inputs samples,
    or samples generated with a seed apart from the timed inputs'."""
    from .inputs import generate_all, load_samples

    if model.io.image is not None:
        name = model.io.image.name
        feeds = [{name: b} for b in calibration_batches(model, batch)]
        return feeds, calibration_images(model)[1]
    shapes = model.io.bind(batch, dict(model.calibration_dims) if dims is None else dims)
    if model.calibration:  # a dataset's items (accuracy runs), stacked as samples
        host = load_samples(model.io, (("", model.calibration),), shapes)
    elif model.data:
        host = load_samples(model.io, model.data, shapes)
    else:
        host = [generate_all(model.io, shapes, seed=model.seed + 1 + k)
                for k in range(CALIBRATION_SAMPLES // 4)]
    convert = ModelArrays(model)
    feeds = [convert(f) for f in host]
    h = hashlib.sha256()
    for f in feeds:
        for k in sorted(f):
            h.update(k.encode() + f[k].tobytes())
    return feeds, h.hexdigest()[:12]
