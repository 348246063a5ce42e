"""The child process of :mod:`archlab.measurement.fresh_process`: build the models, measure, reply.

Reads one job (JSON) on standard input and prints one JSON line: the latencies, or the error.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import torch

from archlab.measurement.interleave import measure_many
from archlab.measurement.latency import measure_latency
from archlab.models import build_model


def _run_job(job: dict[str, Any]) -> list[dict[str, Any]]:
    models = []
    for config in job["configs"]:
        torch.manual_seed(job["seed"])
        models.append(build_model(config).eval())
    options, resolution = job["options"], job["resolution"]
    if job["protocol"] == "interleaved":
        latencies = measure_many(models, resolution, **options)
    else:
        latencies = [measure_latency(m, resolution, **options) for m in models]
    return [lat.as_dict() for lat in latencies]


def main() -> None:
    try:
        reply: dict[str, Any] = {"latencies": _run_job(json.loads(sys.stdin.read()))}
    except Exception as err:  # reported to the parent, which raises it as a ValueError
        reply = {"error": f"{type(err).__name__}: {err}"}
    print(json.dumps(reply))


if __name__ == "__main__":
    main()
