"""Speed benchmark: per-stage cost in process, HTTP throughput and latency, cold start, and
the paper's serving path in the same run.

    .venv/bin/python -m bench.speed [--quick]

Run from the repository root (``make bench-speed`` installs the ``bench`` extra first). Writes
docs/performance.md and docs/performance.json. Server and load generator are pinned to
different cores (server: core 0; client: core 1) and talk over 127.0.0.1 only.
"""

from __future__ import annotations

import os

# As ser-serve does (service/__main__.py): BLAS threads would spin against the core pin. Set
# before numpy is first imported, by the modules below.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from bench.http_load import BIN, cold_start, http_bench, median_of  # noqa: E402
from bench.speed_report import (  # noqa: E402
    DOCS,
    machine,
    make_train_time,
    other_jobs,
    write_markdown,
)
from bench.stages import feature_sets_3s, in_process, trainer_extraction  # noqa: E402
from service.allocator import tune_allocator  # noqa: E402
from service.features import get_feature_set  # noqa: E402
from service.settings import BUNDLED_MODEL  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.speed",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--model", type=Path, default=BUNDLED_MODEL)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument(
        "--out",
        default="performance",
        help="docs/<out>.md and .json (e.g. to keep a run with another model beside the default)",
    )
    parser.add_argument(
        "--from-json", type=Path, help="re-render docs/performance.md from a saved run"
    )
    args = parser.parse_args()
    # As the server does (service/main.py), so in-process figures are the server's.
    tune_allocator()
    if args.from_json:
        write_markdown(json.loads(args.from_json.read_text()), args.out)
        return
    seconds = 3.0 if args.quick else 8.0
    command = " ".join(["python -m bench.speed", *sys.argv[1:]])
    report: dict[str, Any] = {"machine": machine(), "command": command}
    report["features_3s"] = feature_sets_3s(args.model)
    report["in_process"] = in_process(args.model, args.quick)
    levels = (1, 2, 4, 8, 16, 32)
    ours = [str(BIN / "ser-serve")]
    model_env = {"SER_MODEL_PATH": str(args.model.resolve())}
    report["model"] = str(args.model)
    report["http"] = [
        http_bench(
            ours,
            {"SER_WORKERS": "1", "SER_MAX_INFLIGHT": "64", "SER_LOG_LEVEL": "WARNING"} | model_env,
            levels,
            seconds,
            "ours, 1 worker, 1 core",
        )
    ]
    report["http"].append(
        http_bench(
            ours,
            {"SER_WORKERS": "1", "SER_MAX_INFLIGHT": "64", "SER_LOG_LEVEL": "WARNING"} | model_env,
            levels,
            seconds,
            "ours, POST /predict/raw, 1 worker, 1 core",
            raw=True,
        )
    )
    report["http"].append(
        http_bench(
            ours,
            {"SER_WORKERS": "2", "SER_MAX_INFLIGHT": "64", "SER_LOG_LEVEL": "WARNING"} | model_env,
            levels,
            seconds,
            "ours, 2 workers, 2 cores (load generator shares core 1)",
            server_cores="0,1",
        )
    )
    if not args.skip_baseline:
        report["http"].append(
            http_bench(
                [sys.executable, "-m", "bench.paper_baseline.server", "{port}"],
                {},
                (1, 4),
                seconds,
                "paper-style Flask + librosa + Keras, 1 core",
            )
        )
    # Medians of 3 starts each; the serving path imports neither librosa nor numba, so the
    # two cases should agree (the run says whether they do).
    report["cold_start"] = {
        "warm cache": median_of(lambda: cold_start(None, args.model), 3),
        "empty numba cache": median_of(lambda: cold_start(tempfile.mkdtemp(), args.model), 3),
    }
    served = get_feature_set(report["features_3s"]["served feature set"])
    report["trainer_extraction"] = trainer_extraction(args.quick, served)
    report["make_train"] = make_train_time(previous=DOCS / f"{args.out}.json")
    report["load_average_at_end"] = os.getloadavg()
    report["other_jobs_at_end"] = other_jobs()
    DOCS.mkdir(exist_ok=True)
    (DOCS / f"{args.out}.json").write_text(json.dumps(report, indent=1) + "\n")
    write_markdown(report, args.out)
    print((DOCS / f"{args.out}.md").read_text())


if __name__ == "__main__":
    main()
