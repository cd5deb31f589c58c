"""What a cell costs: the price of a million inferences on its machine type, where
--cost-per-hour priced that type (the tables, the cheapest line and the exports share it)."""

from __future__ import annotations

from .schema import CellResult, RunResult


def machine_types(run: RunResult) -> list[str]:
    return sorted({str(m.get("machine_type", "local")) for m in run.machines.values()}
                  or {"local"})


def cost_per_million(c: CellResult, run: RunResult) -> float | None:
    """Price of a million inferences on the cell's machine type at the cell's throughput
    (one process busy all hour), where --cost-per-hour gave that type a price."""
    types = machine_types(run)
    kind = c.spec.machine or (types[0] if len(types) == 1 else None)
    price = run.settings.cost_per_hour.get(kind or "")
    if price is None or not c.items_per_s:
        return None
    return price / 3600.0 / c.items_per_s * 1e6
