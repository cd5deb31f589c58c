"""tune: the advisor's answer printed (the work is commands.tune)."""

from __future__ import annotations

import argparse

from ..commands.tune import start_tune

EXIT_NOTHING = 3  # no candidate met the SLO (documented in the README)


def cmd_tune(args: argparse.Namespace) -> int:
    from ..report.tunetable import tune_text

    run, out = start_tune(args)
    print(tune_text(run))
    print(f"results: {out / 'results.json'}")
    return 0 if run.recommendation is not None else EXIT_NOTHING
