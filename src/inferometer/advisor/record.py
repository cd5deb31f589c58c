"""Every bench call stored as it finishes, and replayed on --resume.  The search is
deterministic given its measurements, so a resumed search asks the same questions in the
same order: the stored ones are answered from the file (their time still counts against the
budget), the first unanswered one is measured, and nothing already measured is lost."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..results.tunerun import Candidate, Measurement, Probe, Scan, Trial
from .search import Bench


class RecordingBench:
    def __init__(self, inner: Bench, stored: Sequence[Measurement],
                 on_record: Callable[[tuple[Measurement, ...]], None]) -> None:
        self.inner = inner
        self.records = {m.key: m for m in stored}
        self._order = list(stored)
        self.on_record = on_record
        self.replayed = 0
        self._replayed_s = 0.0

    @property
    def spent_s(self) -> float:
        """What the search has spent up to its current question: replayed answers count as
        they are replayed, so the budget checks decide as they did the first time."""
        return self._replayed_s + self.inner.spent_s

    def _known(self, key: str) -> Measurement | None:
        m = self.records.get(key)
        if m is not None:
            self.replayed += 1
            self._replayed_s += m.seconds
        return m

    def _keep(self, m: Measurement) -> None:
        self.records[m.key] = m
        self._order.append(m)
        self.on_record(tuple(self._order))

    def probe(self, c: Candidate, sizes: Sequence[int]) -> Probe:
        key = f"probe {c.group} {','.join(map(str, sizes))}"
        if (m := self._known(key)) is not None and m.probe is not None:
            return m.probe
        p = self.inner.probe(c, sizes)
        self._keep(Measurement(key, "probe", c.group, p.seconds, probe=p))
        return p

    def scan(self, c: Candidate, start_qps: float, known_valid: float | None,
             max_steps: int) -> Scan:
        key = (f"scan {c.id} {start_qps:g} {known_valid if known_valid is not None else '-'}"
               f" <={max_steps}")
        if (m := self._known(key)) is not None and m.scan is not None:
            return m.scan
        s = self.inner.scan(c, start_qps, known_valid, max_steps)
        self._keep(Measurement(key, "scan", c.id, s.seconds, scan=s))
        return s

    def test(self, c: Candidate, qps: float, rep: int) -> Trial:
        key = f"test {c.id} {qps:g} #{rep}"
        if (m := self._known(key)) is not None and m.test is not None:
            return m.test
        t = self.inner.test(c, qps, rep)
        self._keep(Measurement(key, "test", c.id, t.seconds, test=t))
        return t
