from __future__ import annotations

import pytest

from archlab.measurement.allocator import (
    ALLOCATORS,
    allocator_env,
    allocator_name,
    describe_allocator,
)
from archlab.measurement.fresh_process import measure_in_subprocess


def test_allocator_names_map_to_glibc_tunables() -> None:
    assert allocator_name({}) == "default"
    assert allocator_name({"GLIBC_TUNABLES": ALLOCATORS["no-trim"] or ""}) == "no-trim"
    assert allocator_name({"GLIBC_TUNABLES": "glibc.malloc.arena_max=1"}) == "custom"
    assert describe_allocator({}) == "glibc default"
    assert "no-trim" in describe_allocator(allocator_env("no-trim", {}))


def test_allocator_env_sets_and_clears_the_variable() -> None:
    assert allocator_env("no-trim", {"PATH": "/bin"})["GLIBC_TUNABLES"] == ALLOCATORS["no-trim"]
    assert "GLIBC_TUNABLES" not in allocator_env("default", {"GLIBC_TUNABLES": "x"})
    with pytest.raises(ValueError, match="unknown allocator"):
        allocator_env("jemalloc")


def test_measurement_in_a_fresh_process_records_its_allocator(tiny_space_path: object) -> None:
    from archlab.space import load_space

    space = load_space(tiny_space_path)  # type: ignore[arg-type]
    config = space.to_config(space.default())
    lats = measure_in_subprocess(
        [config, config],
        64,
        allocator="no-trim",
        protocol="interleaved",
        slices=2,
        runs_per_slice=2,
    )
    assert len(lats) == 2 and all(lat.runs == 4 for lat in lats)
    assert "no-trim" in lats[0].env.allocator and lats[0].protocol == "interleaved"


def test_a_failing_child_is_a_value_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    from archlab.measurement import fresh_process

    def child(*args: object, **kwargs: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess([], 0, '{"error": "KeyError: no such preset"}\n', "")

    monkeypatch.setattr(fresh_process.subprocess, "run", child)
    with pytest.raises(ValueError, match="fresh process failed: KeyError: no such preset"):
        measure_in_subprocess([{"preset": "nope"}], 64)
    with pytest.raises(ValueError, match="unknown protocol"):
        measure_in_subprocess([], 64, protocol="fast")


def test_the_child_reports_its_error_as_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io
    import json

    from archlab.measurement import child

    job = {
        "configs": [{"preset": "nope"}],
        "resolution": 64,
        "protocol": "plain",
        "seed": 0,
        "options": {},
    }
    monkeypatch.setattr(child.sys, "stdin", io.StringIO(json.dumps(job)))
    child.main()
    assert "unknown preset 'nope'" in json.loads(capsys.readouterr().out)["error"]
