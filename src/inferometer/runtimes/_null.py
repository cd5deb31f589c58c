"""A runtime that does no work: what it measures is the harness itself."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from .. import __version__
from ..models.ref import ModelRef
from .base import Availability, LoadOptions, Variant


class _NullSession:
    def prepare(self, inputs: Mapping[str, np.ndarray]) -> Any:
        return inputs

    def run(self, feed: Any) -> Sequence[np.ndarray]:
        return ()

    def info(self) -> dict[str, str]:
        return {"work": "none"}

    def close(self) -> None:
        pass


class Null:
    name: ClassVar[str] = "null"
    variants: ClassVar[tuple[Variant, ...]] = (Variant("default", "n/a", "returns at once"),)
    default_variants: ClassVar[tuple[str, ...]] = ("default",)

    def available(self) -> Availability:
        return Availability(True, version=__version__)

    def version(self) -> str:
        return __version__

    def supports(self, model: ModelRef) -> str | None:
        return None

    def load(self, model: ModelRef, options: LoadOptions) -> _NullSession:
        return _NullSession()
