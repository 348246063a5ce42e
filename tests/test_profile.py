from __future__ import annotations

import json
from pathlib import Path

import pytest

from archlab.models import build_model, config_of
from archlab.predict.profile import (
    FORMAT_VERSION,
    Anchor,
    BlockEntry,
    Calibration,
    DeviceProfile,
    ProfileError,
    current_setup,
    fit_calibration,
    profile_device,
)


def _profile() -> DeviceProfile:
    return DeviceProfile(
        current_setup(1, "eager", 1),
        "tiny",
        64,
        {"Conv2d:abc@1x3x64x64": BlockEntry("Conv2d", 1.5, 1000, 3)},
        Calibration(1.1, 0.5, 4, 0.03),
        [Anchor({"family": "plgvit", "stages": []}, 12.5)],
        created="2026-01-01T00:00:00+00:00",
    )


def test_profile_round_trips_through_its_file(tmp_path: Path) -> None:
    path = tmp_path / "cpu.json"
    _profile().save(path)
    loaded = DeviceProfile.load(path)
    assert loaded == _profile()
    data = json.loads(path.read_text())
    assert data["format_version"] == FORMAT_VERSION
    assert {"cpu", "cores", "threads", "backend", "batch", "allocator", "torch_version"} <= set(
        data["setup"]
    )
    assert data["archlab_version"] and data["host"]


def test_profile_made_before_anchors_loads_without_them(tmp_path: Path) -> None:
    path = tmp_path / "older.json"
    data = _profile().as_dict()
    del data["anchors"]
    path.write_text(json.dumps(data))
    assert DeviceProfile.load(path).anchors == []


def test_other_format_version_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    data = _profile().as_dict()
    data["format_version"] = 0
    path.write_text(json.dumps(data))
    with pytest.raises(ProfileError, match="format version 0.*reads version 1.*profile-device"):
        DeviceProfile.load(path)


@pytest.mark.parametrize(
    ("text", "message"), [("{not json", "not a JSON"), ('{"format_version": 1}', "not a valid")]
)
def test_malformed_files_are_profile_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ProfileError, match=message):
        DeviceProfile.load(path)
    with pytest.raises(ProfileError, match="cannot read"):
        DeviceProfile.load(tmp_path / "missing.json")


def test_mismatches_name_the_differing_settings() -> None:
    profile = _profile()
    assert profile.mismatches() == []
    profile.setup["cpu"] = "Some Other CPU"
    here = current_setup(1, "eager", 1)["cpu"]
    assert profile.mismatches() == [f"cpu: profile 'Some Other CPU', here {here!r}"]


def test_merge_save_keeps_entries_saved_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "cpu.json"
    other = _profile()
    other.entries["Linear:x@1x8"] = BlockEntry("Linear", 0.2, 64, 1, "on-demand")
    other.save(path)
    mine = _profile()
    mine.entries["GELU:y@1x8"] = BlockEntry("GELU", 0.1, 0, 1, "on-demand")
    mine.merge_save(path)
    assert set(DeviceProfile.load(path).entries) == {
        "Conv2d:abc@1x3x64x64",
        "Linear:x@1x8",
        "GELU:y@1x8",
    }


def test_calibration_recovers_a_line() -> None:
    cal = fit_calibration([1.0, 2.0, 3.0, 4.0], [3.0, 5.0, 7.0, 9.0])
    assert cal.slope == pytest.approx(2.0) and cal.intercept_ms == pytest.approx(1.0)
    assert cal.fit_error == pytest.approx(0.0, abs=1e-9) and cal.apply(10.0) == pytest.approx(21.0)


def test_calibration_with_few_models_fits_an_offset_only() -> None:
    cal = fit_calibration([1.0, 2.0], [2.0, 3.0])
    assert cal.slope == 1.0 and cal.intercept_ms == pytest.approx(1.0)


def test_profile_device_times_the_blocks_of_a_space(tiny_space_path: Path) -> None:
    profile = profile_device(
        str(tiny_space_path), n_models=1, n_calibration=1, runs=2, calibration_slices=1
    )
    assert profile.space == "tiny_plgvit" and profile.resolution == 64
    assert len(profile.entries) >= 10
    assert all(e.ms >= 0 and e.samples >= 1 and e.kind for e in profile.entries.values())
    assert any(e.macs > 0 for e in profile.entries.values())
    assert profile.calibration.n_models == 1
    # the calibration model is kept as an anchor: its config rebuilds it, with its latency then
    (anchor,) = profile.anchors
    assert anchor.ms > 0
    assert config_of(build_model(anchor.config), anchor.config["family"]) == anchor.config
    assert all(k.count("@") == 1 for k in profile.entries)


def test_calibration_models_are_timed_in_fresh_processes(
    tiny_space_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not in the process that ran the hooked passes: the fit and the anchors use the figures of
    ``measure_many_in_processes``, with the configs the anchors keep."""
    import archlab.predict.profile
    from archlab.measurement.latency import Latency, LatencyEnv

    calls = []

    def fake(configs: list, resolution: int, **kw: object) -> list[Latency]:
        calls.append((configs, resolution, kw))
        env = LatencyEnv("cpu", 1, 1, resolution)
        return [Latency(10.0 + i, 0.1, 0.01, 0.01, 4, env) for i in range(len(configs))]

    monkeypatch.setattr(archlab.predict.profile, "measure_many_in_processes", fake)
    profile = profile_device(
        str(tiny_space_path),
        n_models=3,
        n_calibration=2,
        runs=2,
        calibration_slices=6,
        calibration_processes=2,
    )
    ((configs, resolution, kw),) = calls
    assert resolution == 64 and kw["processes"] == 2 and kw["slices"] == 6
    assert [a.config for a in profile.anchors] == configs
    assert [a.ms for a in profile.anchors] == [10.0, 11.0]
    assert profile.calibration.n_models == 2
