"""The result schema.  Bump SCHEMA_VERSION on any incompatible change and add a migration to
`store.MIGRATIONS`; golden files of every version live in tests/golden/."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import median

from ..measure.libraries import Library
from ..stats import Summary

SCHEMA_VERSION = 5


@dataclass(frozen=True)
class RunHeader:
    """What every results.json starts with, whatever wrote it: one reader dispatches on
    `kind` ("run", "loadtest", "scan" or "accuracy")."""

    schema_version: int
    kind: str
    tool_version: str
    created: str
    command: tuple[str, ...]
    machine: dict[str, object]


@dataclass(frozen=True)
class CellSpec:
    """One measured configuration: a fresh worker process runs exactly this."""

    model: str
    runtime: str
    variant: str
    threads: int | None  # None: the runtime's own default ("auto", unrestricted)
    batch: int
    device: str = "cpu"  # "cpu" or "cuda"
    # the model's symbolic dims bound for this cell (--dim seq=128,384: one cell per value)
    dims: tuple[tuple[str, int], ...] = ()
    # the machine type it runs on, when a run compares machines (a cluster of several types);
    # None: whichever machine the run has
    machine: str | None = None

    @property
    def threads_label(self) -> str:
        return "auto" if self.threads is None else str(self.threads)

    @property
    def dims_label(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.dims)

    @property
    def shape_key(self) -> str:
        """What fixes the inputs' shapes: batch and dims (the integrity reference's key)."""
        return f"b{self.batch}" + "".join(f".{k}{v}" for k, v in self.dims)

    @property
    def id(self) -> str:
        where = "" if self.device == "cpu" else f".{self.device}"
        on = "" if self.machine is None else f".on-{self.machine}"
        return (f"{self.model}.{self.runtime}.{self.variant}.t{self.threads_label}"
                f".{self.shape_key}{where}{on}")


@dataclass(frozen=True)
class WorkerReport:
    """What a worker sends back: raw measurements only; statistics are derived by the parent."""

    status: str  # "ok" or "failed"
    error: str | None = None
    runtime_version: str = ""
    precision: str = "fp32"
    settings: dict[str, str] = field(default_factory=dict)
    load_s: float | None = None
    first_ns: int | None = None
    warmup_ns: tuple[int, ...] = ()
    samples_ns: tuple[int, ...] = ()
    stop_reason: str = ""
    other_load: float | None = None
    rss_after_load_mb: float | None = None
    peak_rss_after_load_mb: float | None = None
    peak_rss_mb: float | None = None
    libraries: tuple[Library, ...] = ()
    has_outputs: bool = False
    cpu_affinity: tuple[int, ...] = ()  # CPUs the worker was allowed to run on
    device_samples_ns: tuple[int, ...] = ()  # accelerator time of each measured run (events)
    device_memory_mb: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class OutputCheck:
    """One output against the reference's."""

    name: str
    max_abs_diff: float
    rel_max_abs_diff: float  # max |d| / max |reference|
    cosine: float  # the lowest cosine over the items (rows) of the output
    top1_agreement: float | None  # class logits only: argmax over the last axis agrees
    passed: bool


@dataclass(frozen=True)
class Integrity:
    """Every output on the fixed inputs compared with the reference runtime's.  The top-level
    figures are those of `output`: the first that failed, else the one with the lowest
    cosine."""

    reference: str
    precision: str
    max_abs_diff: float
    rel_max_abs_diff: float  # max |d| / max |reference|
    cosine: float
    top1_agreement: float | None  # None when the output is not a class vector
    passed: bool
    rule: str  # the tolerance that decided `passed`, in words
    output: str = ""
    outputs: tuple[OutputCheck, ...] = ()


@dataclass(frozen=True)
class ProcessResult:
    """One worker process of a cell: its own statistics, cold start and memory.  A cell runs
    in several fresh processes because the variance between processes is larger than the
    variance inside one; the cell's intervals and verdicts are built on this level."""

    rep: int  # which of the cell's processes (0-based), in the order the run scheduled them
    summary: Summary
    first_ms: float | None = None
    load_s: float | None = None
    stop_reason: str = ""
    other_load: float | None = None
    rss_after_load_mb: float | None = None
    peak_rss_after_load_mb: float | None = None
    peak_rss_mb: float | None = None
    wall_s: float | None = None
    cpu_affinity: tuple[int, ...] = ()
    device_summary: Summary | None = None
    # the machine's speed just before this process started (measure.speed: ms of fixed work):
    # the Python loop, and the single-thread matrix product (None in runs made before it)
    probe_ms: float | None = None
    gemm_ms: float | None = None
    node: str = ""  # the node it ran on: a key of the run's `machines`


@dataclass(frozen=True)
class CellResult:
    """A measured configuration.  Its figures pool its processes: latency statistics over
    every process's samples, the median's interval from the two-level bootstrap (processes,
    then samples), load and first inference the median over processes, peak memory the
    highest; each process's own figures are in `processes`."""

    spec: CellSpec
    status: str  # "ok" or "failed"
    error: str | None = None
    runtime_version: str = ""
    precision: str = "fp32"
    settings: dict[str, str] = field(default_factory=dict)
    timed_region: str = ""
    load_s: float | None = None
    first_ms: float | None = None
    summary: Summary | None = None
    items_per_s: float | None = None
    stop_reason: str = ""
    unstable: bool = False
    other_load: float | None = None
    noisy: bool = False
    rss_after_load_mb: float | None = None
    peak_rss_after_load_mb: float | None = None
    peak_rss_mb: float | None = None
    libraries: tuple[Library, ...] = ()
    integrity: Integrity | None = None
    wall_s: float | None = None
    cpu_affinity: tuple[int, ...] = ()
    # On an accelerator: device compute time alone (events around the model call) next to the
    # end-to-end `summary`, and the framework's / driver's memory figures.
    device_summary: Summary | None = None
    device_memory_mb: dict[str, float] = field(default_factory=dict)
    processes: tuple[ProcessResult, ...] = ()
    # range of the process medians over their median; None with fewer than 2 processes
    spread: float | None = None


@dataclass(frozen=True)
class TensorInfo:
    """An input or output of a model as a run stored it (models.io's description)."""

    name: str
    dtype: str
    shape: tuple[int | str, ...]  # ints fixed, names symbolic
    kind: str = "tensor"  # inputs: the generator ("image", "tokens", ...); outputs: "classes"...
    values: str = ""  # inputs: how their values were made, in words

    def text(self) -> str:
        return f"{self.name} {self.dtype} [{','.join(map(str, self.shape))}]"


@dataclass(frozen=True)
class ModelInfo:
    name: str
    source: str  # "zoo" or the path of the user's file
    onnx_sha256: str
    inputs: tuple[TensorInfo, ...] = ()
    outputs: tuple[TensorInfo, ...] = ()
    batch_dim: str | None = None

    @property
    def output_kind(self) -> str:
        return self.outputs[0].kind if self.outputs else "tensor"

    def signature(self) -> str:
        """"input 3x224x224, output classes" for one image; every tensor otherwise."""
        if len(self.inputs) == 1 and self.inputs[0].kind == "image":
            item = "x".join(map(str, self.inputs[0].shape[1:]))
            return f"input {item}, output {self.output_kind}"
        return (f"inputs {'; '.join(t.text() for t in self.inputs)}; outputs "
                f"{'; '.join(t.text() for t in self.outputs)}")


ORDERS = ("interleaved", "sequential", "random")  # how a run schedules the cells' processes


@dataclass(frozen=True)
class RunSettings:
    preprocess_timed: bool
    pin: bool
    timeout_s: float
    reference_runtime: str
    warmup: int
    min_time_s: float
    min_count: int
    max_time_s: float
    target_rel_ci: float
    noisy_threshold: float
    # warm-up ended early once it had run this long (0: runs before the limit, none)
    warmup_max_s: float = 0.0
    repeat: int = 1  # fresh worker processes per cell (with repeat_max: at least)
    # --repeat auto: a cell whose processes are cheap gets up to repeat_max of them, while
    # they total at most cell_budget_s at the length of those after its first (0: every cell
    # gets `repeat`; see processes_wanted)
    repeat_max: int = 0
    cell_budget_s: float = 0.0
    order: str = "sequential"  # how processes were scheduled: interleaved, sequential, random
    max_spread: float = 0.10  # a cell whose between-process spread exceeds this is unstable
    cluster: str | None = None  # --cluster: where the processes ran (None: this machine)
    slots_per_node: int = 1
    # --cost-per-hour: machine type -> price an hour, for the cost per million inferences
    cost_per_hour: dict[str, float] = field(default_factory=dict)

    @property
    def target_label(self) -> str:
        """Each process's CI target as the reports write it: '+-1%', '+-1.7%'."""
        return f"+-{self.target_rel_ci * 100:.2g}%"

    @property
    def processes_label(self) -> str:
        """'3', or under --repeat auto '2-5 (as many as take <= 12 s together)'."""
        if self.repeat_max <= self.repeat:
            return str(self.repeat)
        return (f"{self.repeat}-{self.repeat_max} (as many as take <= "
                f"{self.cell_budget_s:g} s together)")


def processes_wanted(s: RunSettings, walls: Sequence[float]) -> int:
    """How many processes a cell gets: `repeat`, or under --repeat auto, once its first
    `repeat` have run (their wall times `walls`, in order), as many as fit the cell's budget,
    from `repeat` to `repeat_max`.  A further process costs what the first ones after the
    first did (the first alone also ran the integrity pass: 30 s of TVM), so their median is
    the length counted.  A function of stored figures alone, so a resumed run decides as
    the first one did."""
    if s.repeat_max <= s.repeat or len(walls) < s.repeat:
        return s.repeat
    mid = median(walls[1:s.repeat] or walls[:1])
    fit = int(s.cell_budget_s // mid) if mid > 0 else s.repeat_max
    return max(s.repeat, min(s.repeat_max, fit))


@dataclass(frozen=True)
class RunResult(RunHeader):
    """kind "run": the cells of `inferometer run`."""

    status: str  # "running", "complete" or "interrupted"
    settings: RunSettings
    models: tuple[ModelInfo, ...]
    cells: tuple[CellResult, ...]
    # "model.bBATCH" -> what produced the integrity reference (or why there is none)
    references: dict[str, str] = field(default_factory=dict)
    # "model.runtime.variant" -> what the conversion step did (or why it failed)
    conversions: dict[str, str] = field(default_factory=dict)
    # every node the run used -> its machine type, slots and description (measure.machine);
    # a run on this machine alone has one, "local"
    machines: dict[str, dict[str, object]] = field(default_factory=dict)
