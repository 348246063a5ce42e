"""The built wheel is a working install: spaces, search and dashboard from any folder.

The wheel is built from this checkout and installed, without its dependencies, into a fresh
virtual environment whose only other entry is the test environment's site-packages (for torch,
Optuna and the rest); the editable install of the checkout is not visible there (its finder is
registered by a .pth file, which a plain path entry does not run). Every command runs from an
empty folder, so nothing can come from the checkout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_SPACES = sorted(p.stem for p in (ROOT / "search_spaces").glob("*.yaml"))


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    result = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("wheel")
    dist = root / "dist"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ARCHLAB_HOME")}
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(dist), str(ROOT)],
        root,
        env,
    )  # fmt: skip
    wheels = list(dist.glob("archlab-*.whl"))
    assert len(wheels) == 1, wheels
    target = root / "venv"
    venv.EnvBuilder(with_pip=False).create(target)
    bindir = target / "bin"
    python = bindir / "python"
    site = Path(
        _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
             root, env).strip()
    )  # fmt: skip
    (site / "outer.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
         str(wheels[0])],
        root,
        env,
    )  # fmt: skip
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    env = {**env, "ARCHLAB_HOME": str(elsewhere / "studies"), "PATH": f"{bindir}:{env['PATH']}"}
    return bindir, elsewhere, env


def test_the_wheel_holds_every_module(installed: tuple[Path, Path, dict[str, str]]) -> None:
    """A subpackage missing from pyproject's package list would be left out of the wheel."""
    bindir, cwd, env = installed
    code = "import archlab, pathlib; print(pathlib.Path(archlab.__file__).parent)"
    package = Path(_run([str(bindir / "python"), "-c", code], cwd, env).strip())
    shipped = {p.relative_to(package).as_posix() for p in package.rglob("*.py")}
    source = {p.relative_to(ROOT / "archlab").as_posix() for p in (ROOT / "archlab").rglob("*.py")}
    assert source <= shipped, sorted(source - shipped)
    for folder in ("search_spaces", "app"):
        files = {p.relative_to(ROOT / folder) for p in (ROOT / folder).rglob("*.*")}
        files = {f for f in files if "__pycache__" not in f.parts}
        assert all((package / folder / f).is_file() for f in files), folder


def test_the_package_comes_from_the_wheel(installed: tuple[Path, Path, dict[str, str]]) -> None:
    bindir, cwd, env = installed
    code = "import archlab; print(archlab.__file__)"
    where = _run([str(bindir / "python"), "-c", code], cwd, env)
    assert str(ROOT) not in where and "site-packages" in where, where


def test_spaces_lists_every_shipped_space(installed: tuple[Path, Path, dict[str, str]]) -> None:
    bindir, cwd, env = installed
    entries = json.loads(_run([str(bindir / "archlab"), "spaces", "--format", "json"], cwd, env))
    assert sorted(e["name"] for e in entries) == SHIPPED_SPACES


def test_a_two_trial_search_runs(installed: tuple[Path, Path, dict[str, str]]) -> None:
    bindir, cwd, env = installed
    out = _run(
        [str(bindir / "archlab"), "search", "--space", "plgvit", "--target-latency", "1s",
         "--n-trials", "2", "--resolution", "64"],
        cwd,
        env,
    )  # fmt: skip
    assert "2 new trials" in " ".join(out.split()), out
    assert (cwd / "studies" / "plgvit@1000ms" / "pareto.csv").exists()


def test_the_dashboard_command_is_there(installed: tuple[Path, Path, dict[str, str]]) -> None:
    bindir, cwd, env = installed
    assert "dashboard" in _run([str(bindir / "archlab"), "dashboard", "--help"], cwd, env)
    app = _run(
        [str(bindir / "python"), "-c",
         "from archlab.dashboard.launch import APP; print(APP, APP.is_file())"],
        cwd,
        env,
    )  # fmt: skip
    assert "site-packages" in app and app.strip().endswith("True"), app
