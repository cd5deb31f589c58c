"""The model's inputs and outputs: one frozen description, made once in `models` (from the ONNX
graph or the zoo entry), carried in the job to the worker, read by every runtime.  Nothing
downstream assumes one NCHW image: an image is one kind of input (`Values.kind == "image"`),
whose host form is a decoded uint8 NHWC buffer that the runtime converts inside the timed
region.  Light on purpose: the worker imports it in an environment holding only numpy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from ..errors import ModelError

Dim = int | str  # a fixed size, or the name of a symbolic dim
INPUT_SEED = 20261122  # the generated inputs' default seed (--seed changes it)


@dataclass(frozen=True)
class Values:
    """How an input's synthetic values are generated (models.inputs)."""

    kind: str  # image, tokens, ones, zeros, positions, normal, range or bool
    low: float | None = None  # "tokens" and "range": values in [low, high)
    high: float | None = None
    why: str = ""  # where the choice came from, as `inspect` prints it

    def describe(self) -> str:
        if self.kind in ("tokens", "range"):
            lo = int(self.low) if self.low is not None and float(self.low).is_integer() \
                else self.low
            hi = int(self.high) if self.high is not None and float(self.high).is_integer() \
                else self.high
            text = f"{self.kind} [{lo}, {hi})"
        else:
            text = self.kind
        return f"{text} ({self.why})" if self.why else text


@dataclass(frozen=True)
class Tensor:
    name: str
    dtype: str
    shape: tuple[Dim, ...]
    kind: str = "tensor"  # outputs: "classes" (logits: top-1 is checked), "embedding", "tensor"

    def shape_text(self) -> str:
        return "[" + ",".join(str(d) for d in self.shape) + "]"

    def text(self) -> str:
        return f"{self.name} {self.dtype} {self.shape_text()}"


def output_kind(t: Tensor, outputs: int) -> str:
    """What a model file's output holds, as the integrity check reads it: class logits (top-1
    is compared) when it is [batch, classes] in a float type and the model's only output, or
    named for logits; a single column (a score, a probability) is no choice between classes.
    One rule for every file reader (ONNX, torch.export, TorchScript)."""
    classes = (len(t.shape) == 2 and t.dtype.startswith(("float", "bfloat"))
               and t.shape[1] != 1 and (outputs == 1 or "logit" in t.name))
    return "classes" if classes else "tensor"


@dataclass(frozen=True)
class Input:
    tensor: Tensor
    values: Values

    @property
    def name(self) -> str:
        return self.tensor.name

    @property
    def is_image(self) -> bool:
        return self.values.kind == "image"


@dataclass(frozen=True)
class ModelIO:
    inputs: tuple[Input, ...]
    outputs: tuple[Tensor, ...]
    # The symbolic dim `--batch` binds: every input's leading dim.  None: the inputs share no
    # symbolic leading dim (fixed, or bound by --dim one by one).
    batch_dim: str | None = None
    # Values the model suggests for its other symbolic dims (the zoo's default sequence
    # length); an unbound dim without one is an error, never a silent 1.
    defaults: tuple[tuple[str, int], ...] = ()

    @property
    def image(self) -> Input | None:
        """The input, when the model takes exactly one and it is an image."""
        if len(self.inputs) == 1 and self.inputs[0].is_image:
            return self.inputs[0]
        return None

    @property
    def has_image(self) -> bool:
        return any(i.is_image for i in self.inputs)

    @property
    def fixed_batch(self) -> int | None:
        """The leading size every input has when it is fixed in the file (None: free)."""
        if self.batch_dim is not None:
            return None
        leads = {i.tensor.shape[0] for i in self.inputs if i.tensor.shape}
        if len(leads) == 1 and isinstance(next(iter(leads)), int):
            return int(next(iter(leads)))  # type: ignore[arg-type]
        return None

    def dims(self) -> tuple[str, ...]:
        """Symbolic dims other than the batch dim, in order of first appearance."""
        seen: dict[str, None] = {}
        for i in self.inputs:
            for d in i.tensor.shape:
                if isinstance(d, str) and d != self.batch_dim:
                    seen.setdefault(d)
        return tuple(seen)

    def input(self, name: str) -> Input:
        for i in self.inputs:
            if i.name == name:
                return i
        raise ModelError(f"the model has no input '{name}'; its inputs: "
                         f"{', '.join(i.name for i in self.inputs)}")

    def bind(self, batch: int, dims: Mapping[str, int]) -> dict[str, tuple[int, ...]]:
        """Every input's concrete shape for a cell.  An unbound dim is an error that names the
        dim and the flag that binds it."""
        values = {**dict(self.defaults), **dims}
        if self.batch_dim is not None:
            values[self.batch_dim] = batch
        out = {}
        for i in self.inputs:
            shape = []
            for d in i.tensor.shape:
                if isinstance(d, int):
                    shape.append(d)
                elif d in values:
                    shape.append(int(values[d]))
                else:
                    raise ModelError(
                        f"input '{i.name}' {i.tensor.shape_text()} has the dim '{d}' unbound; "
                        f"bind it with --dim {d}=N (or --shape {i.name}:...)")
            out[i.name] = tuple(shape)
        return out

    def substitute(self, bound: Mapping[str, int]) -> ModelIO:
        """This description with the given symbolic dims fixed (what --shape does)."""
        def fix(t: Tensor) -> Tensor:
            return replace(t, shape=tuple(bound.get(d, d) if isinstance(d, str) else d
                                          for d in t.shape))
        return replace(
            self, inputs=tuple(replace(i, tensor=fix(i.tensor)) for i in self.inputs),
            outputs=tuple(fix(o) for o in self.outputs),
            batch_dim=None if self.batch_dim in bound else self.batch_dim,
            defaults=tuple((k, v) for k, v in self.defaults if k not in bound))

    def with_values(self, name: str, values: Values) -> ModelIO:
        self.input(name)
        return replace(self, inputs=tuple(replace(i, values=values) if i.name == name else i
                                          for i in self.inputs))

    def unresolved(self) -> list[str]:
        """Inputs whose values cannot be generated safely (integers of unknown range)."""
        return [i.name for i in self.inputs if i.values.kind == "range" and i.values.high is None]


def image_io(name: str, chw: tuple[int, int, int], output: str = "output",
             kind: str = "classes", batch: Dim = "batch", classes: Dim = "classes") -> ModelIO:
    """The description of a one-image classifier: input NCHW float32, output [batch, K]
    (K a number where it is known, so that a server's metadata and the exported file say it)."""
    t = Tensor(name, "float32", (batch, *chw))
    return ModelIO(inputs=(Input(t, Values("image", why="NCHW float, 3 channels")),),
                   outputs=(Tensor(output, "float32", (batch, classes), kind),),
                   batch_dim=batch if isinstance(batch, str) else None)


def host_shape(inp: Input, shape: Sequence[int]) -> tuple[int, ...]:
    """The shape of the host array a runtime receives: an image arrives as uint8 NHWC."""
    if inp.is_image:
        n, c, h, w = shape
        return (n, h, w, c)
    return tuple(shape)
