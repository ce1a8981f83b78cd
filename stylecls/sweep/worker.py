"""One run of a sweep, in its own process: ``python -m stylecls.sweep.worker OUT NAME [--threads N]``.

Brings the run to ``done`` (skip / resume / start, :func:`stylecls.train.run_spec`), then evaluates
it once (``eval/``): on its test part, or for a run of leave-one-domain-out selection (``val_domain``, no
test part) on its validation part, the left-out training domain that selection reads.
Exit codes: 0 done, 2 bad input, 130/143/138 interrupted (``last.pt`` kept), 1 failed.
"""

from __future__ import annotations

import argparse
import signal
import sys
from dataclasses import replace
from pathlib import Path

from stylecls.errors import StyleclsError
from stylecls.sweep.plan import SweepPlan, evaluated

__all__ = ["main", "run_one"]


def run_one(out: str | Path, name: str, threads: int | None = None, workers: int | None = None) -> Path:
    """Train (or skip / resume) and evaluate the run ``name`` of the sweep in ``out``; returns its folder."""
    from stylecls.evaluate import evaluate
    from stylecls.train import is_main_process, run_spec

    plan = SweepPlan.read(out)
    spec = plan.spec_named(name)
    runtime = replace(
        plan.runtime, out=str(plan.out), name=None, progress=False,
        threads=threads if threads is not None else plan.runtime.threads,
        workers=workers if workers is not None else plan.runtime.workers,
    )  # fmt: skip
    path = run_spec(spec, runtime, plan.run_dir(spec))
    if is_main_process() and not evaluated(path):
        result = evaluate(path, device=runtime.device, workers=0)  # test, or val where there is none
        print(f"evaluated {path}: top-1 {result.metrics['top1']:.1%}", flush=True)
    return path


def main(argv: list[str] | None = None) -> int:
    from stylecls.train import Preempted

    parser = argparse.ArgumentParser(prog="python -m stylecls.sweep.worker", description=__doc__)
    parser.add_argument("out", help="the sweep folder (holds sweep.json)")
    parser.add_argument("name", help="the run's folder name")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads for this run")
    parser.add_argument("--workers", type=int, default=None, help="data-loading processes for this run")
    args = parser.parse_args(argv)

    def stop(signum: int, frame: object) -> None:  # outside training too: an exception, so no write is cut short
        raise Preempted(signum)

    signal.signal(signal.SIGTERM, stop)  # training catches it itself and stops after the current step
    try:
        run_one(args.out, args.name, args.threads, args.workers)
    except StyleclsError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 2
    except Preempted as e:
        return int(e.exit_code)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
