from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from archlab.measurement.blocks import ContextTiming, block_names
from archlab.measurement.flops import count_macs, count_params
from archlab.report.breakdown import REMAINDER, add_latency, module_timing, stage_table
from archlab.report.tables import module_table
from archlab.space import load_space


@pytest.fixture
def tiny(tiny_space_path: Path) -> torch.nn.Module:
    space = load_space(tiny_space_path)
    torch.manual_seed(0)
    return space.family.build(space.to_cfg(space.default())).eval()


def test_stages_and_remainder_add_up_to_the_model(tiny: torch.nn.Module) -> None:
    macs = count_macs(tiny, 64)
    fake = ContextTiming(10.0, {name: 1.0 for name in block_names(tiny)}, runs=1)
    table = stage_table(tiny, macs, fake)
    assert list(table["stage"])[-1] == REMAINDER
    assert table["params"].sum() == count_params(tiny)
    assert table["macs"].sum() == macs.total
    assert table["latency_ms"].sum() == pytest.approx(10.0)
    assert table["macs_share"].sum() == pytest.approx(1.0)
    stage2 = table.set_index("stage").loc["stages.2"]
    assert stage2["latency_ms"] == len([b for b in block_names(tiny) if b.startswith("stages.2.")])


def test_stage_table_without_timing_has_no_latency(tiny: torch.nn.Module) -> None:
    table = stage_table(tiny, count_macs(tiny, 64))
    assert table["latency_ms"].isna().all() and table["latency_share"].isna().all()


def test_module_latency_columns_come_from_in_context_timing(tiny: torch.nn.Module) -> None:
    modules = module_table(tiny, count_macs(tiny, 64), depth=2)
    timing = module_timing(tiny, 64, list(modules["module"]), runs=2)
    out = add_latency(modules, timing)
    row = out.set_index("module")
    assert pd.isna(row.loc["stages", "latency_ms"])  # a ModuleList never runs itself
    assert row.loc["stages.0", "latency_ms"] > 0 and 0 < row.loc["tokenizer", "latency_share"] < 1
