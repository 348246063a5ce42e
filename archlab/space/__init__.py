"""Search spaces as data: load, validate, sample, and turn an architecture into a config.

A space file (``search_spaces/<name>.yaml``) holds values only::

    family: plgvit
    description: LW PLG-ViT around 5M parameters
    resolution: 224                 # input size the space is searched at
    base: lw_plgvit_a               # preset the fixed part starts from (optional)
    references: [lw_plgvit_a]       # presets trained beside the space's archs (optional)
    fixed: {ffn: ccf_plus}          # overrides of the base config (nested, like a config file)
    choices:                        # knob → list of values, or a {low, high, step} range
      stages.0.dim: [32, 48, 64]
      stages.2.depth: {low: 2, high: 8}

An **arch** is a flat dict with one value per knob, the knob being a dotted path into the config.
It is exactly ``trial.params`` of an Optuna trial, so any stored trial is rebuilt by
``space.to_cfg(trial.params)``.

Space text is read within bounds (:mod:`archlab.space.bounded_yaml`: no anchors, at most 64 kB,
12 levels, 1,024 entries a list; :mod:`archlab.space.knobs`: 256 choices a knob, 100,000 steps a
range), since studies store it and every process that joins or shows a study parses it again.
"""

from __future__ import annotations

import copy
import functools
import itertools
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from archlab.models import FAMILIES, Family, cfg_from_dict, cfg_to_dict, find_preset
from archlab.resources import shipped_dir
from archlab.space.bounded_yaml import parse_space_yaml, read_space_file
from archlab.space.config_paths import check_path, copy_tree, set_path, with_path
from archlab.space.knobs import Knob, Scalar, SpaceError, extreme, parse_knob

__all__ = [
    "Knob",
    "SearchSpace",
    "SpaceError",
    "load_space",
    "load_space_text",
    "list_spaces",
    "SPACES_DIR",
]

SPACES_DIR = shipped_dir("search_spaces")
# Knob combinations tried to prove a space valid, over all its groups: every combination up to
# this many (the shipped spaces have at most about 12,000), a seeded sample beyond, so that
# loading any file stays within about a second.
_MAX_COMBINATIONS = 20_000
_MAX_RESOLUTION = 2048


@dataclass
class SearchSpace:
    """A loaded, validated search space (see the module docstring for the file format)."""

    name: str
    family: Family
    knobs: dict[str, Knob]
    base_config: dict[str, Any]
    resolution: int = 224
    description: str = ""
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    references: tuple[str, ...] = ()  # presets (any family) shown beside the space's archs

    def default(self) -> dict[str, Scalar]:
        """The arch made of every knob's first value (or range low)."""
        return {k: knob.default() for k, knob in self.knobs.items()}

    def corners(self) -> list[dict[str, Scalar]]:
        """The space's low and high corner archs that are valid (zero, one or two): the smallest and
        largest by width, depth and every other numeric knob (not always by parameters).

        Every numeric knob at its lowest (highest) value, ``null`` counting as the lowest (a
        feature left out) and ``false`` below ``true``; a knob of words keeps its first value.
        """
        found = []
        for pick in (min, max):
            arch = {k: extreme(knob, pick) for k, knob in self.knobs.items()}
            try:
                self.to_cfg(arch)
            except ValueError:
                continue
            if arch not in found:
                found.append(arch)
        return found

    def sample(self, rng: random.Random | int | None = None) -> dict[str, Scalar]:
        """A uniformly random arch; ``rng`` may be a seed."""
        rng = rng if isinstance(rng, random.Random) else random.Random(rng)
        return {k: knob.sample(rng) for k, knob in self.knobs.items()}

    def first_valid(
        self, archs: Iterable[dict[str, Scalar]], n: int
    ) -> list[tuple[dict[str, Scalar], Any]]:
        """The first ``n`` of ``archs`` that make a possible combination, each with its config
        dataclass (:meth:`to_cfg`); fewer if ``archs`` runs out first."""
        found: list[tuple[dict[str, Scalar], Any]] = []
        if n <= 0:
            return found
        for arch in archs:
            try:
                found.append((arch, self.to_cfg(arch)))
            except ValueError:
                continue
            if len(found) == n:
                break
        return found

    def random_valid(
        self, n: int, first_seed: int = 0, tries_per_arch: int = 100
    ) -> list[tuple[dict[str, Scalar], Any]]:
        """:meth:`first_valid` over the random archs of seeds ``first_seed``, ``first_seed + 1``
        ... (at most ``tries_per_arch · n`` of them): the same archs on every call."""
        seeds = range(first_seed, first_seed + tries_per_arch * n)
        return self.first_valid((self.sample(seed) for seed in seeds), n)

    def check_arch(self, arch: dict[str, Any]) -> None:
        """Raise if ``arch`` names a knob the space lacks or a value a knob cannot take.

        Raises:
            ValueError: the message names every offending knob with the values it allows.
        """
        problems = [f"{k!r} is not a knob" for k in arch if k not in self.knobs]
        problems += [
            f"{k}={v!r} is not in its {'range' if knob.values is None else 'choices'} "
            + knob.describe()
            for k, v in arch.items()
            if (knob := self.knobs.get(k)) is not None and not knob.allows(v)
        ]
        if problems:
            raise ValueError(f"not an arch of space {self.name!r}: " + "; ".join(problems))

    def suggest(self, trial: optuna.trial.BaseTrial) -> dict[str, Scalar]:
        """Ask an Optuna trial for one value per knob; the result equals ``trial.params``."""
        return {k: knob.suggest(trial) for k, knob in self.knobs.items()}

    def to_config(self, arch: dict[str, Any]) -> dict[str, Any]:
        """The full plain config (with ``family``) that ``archlab.build_model`` accepts."""
        config = copy_tree(self.base_config)
        for key, value in arch.items():
            if key not in self.knobs:
                raise KeyError(f"{key!r} is not a knob of space {self.name!r}")
            set_path(config, key, value)
        return config

    def to_cfg(self, arch: dict[str, Any]) -> Any:
        """The family's config dataclass for an arch.

        Raises:
            ValueError: the combination is impossible; the message says which constraint failed.
        """
        return self._cfg_from_config(self.to_config(arch))

    def _cfg_from_config(self, config: dict[str, Any]) -> Any:
        cfg = cfg_from_dict(self.family.cfg_cls, config)
        check = getattr(cfg, "check_resolution", None)
        if check is not None:
            check(self.resolution)
        return cfg


def _group(knob: str) -> str:
    """Knobs sharing a prefix up to their last list index validate together (``stages.2``)."""
    parts = knob.split(".")
    idx = [i for i, p in enumerate(parts) if p.isdigit()]
    return ".".join(parts[: idx[-1] + 1]) if idx else "<global>"


def _validate_combinations(space: SearchSpace) -> None:
    """Try the combinations within each group (others at their defaults) within one budget:
    every one of a group whose share allows it, else a seeded sample of that many.

    Fails on the first bad one.
    """
    default_config = space.to_config(space.default())
    groups: dict[str, list[Knob]] = {}
    for knob in space.knobs.values():
        groups.setdefault(_group(knob.name), []).append(knob)
    sized = sorted(groups.items(), key=lambda item: _n_combinations(item[1]))
    budget = _MAX_COMBINATIONS
    for left, (group, knobs) in zip(range(len(sized), 0, -1), sized):
        share = budget // left
        budget -= min(share, _n_combinations(knobs))
        for combo in _combinations(knobs, share):
            config = default_config
            for knob, value in zip(knobs, combo):
                config = with_path(config, knob.name.split("."), value)
            try:
                space._cfg_from_config(config)
            except ValueError as err:
                shown = ", ".join(f"{k.name}={v!r}" for k, v in zip(knobs, combo))
                raise SpaceError(
                    space.source,
                    f"choices ({group})",
                    f"the combination {shown} is impossible: {err}",
                ) from None


def _n_combinations(knobs: list[Knob]) -> int:
    return math.prod(len(k.checked_values()) for k in knobs)


def _combinations(knobs: list[Knob], limit: int) -> Iterable[tuple[Scalar, ...]]:
    """Every combination of the knobs' checked values if there are at most ``limit``, else
    ``limit`` seeded random ones."""
    values = [k.checked_values() for k in knobs]
    if _n_combinations(knobs) <= limit:
        return itertools.product(*values)
    rng = random.Random(0)
    return (tuple(rng.choice(v) for v in values) for _ in range(limit))


def _read_yaml(path: Path) -> dict[str, Any]:
    return _parse_yaml(read_space_file(path), str(path))


def _parse_yaml(text: str, source: str) -> dict[str, Any]:
    data = parse_space_yaml(text, source)
    if not isinstance(data, dict):
        raise SpaceError(
            source, "<file>", "a space file must be a mapping with 'family' and 'choices'"
        )
    return data


def _base_config(source: str, data: dict[str, Any], family: Family) -> dict[str, Any]:
    base = data.get("base")
    if base is not None:
        try:
            fam, _, preset = find_preset(str(base))
        except KeyError as err:
            raise SpaceError(source, "base", str(err.args[0])) from None
        if fam.name != family.name:
            raise SpaceError(
                source,
                "base",
                f"preset {base!r} belongs to family {fam.name!r}, not {family.name!r}",
            )
        config = cfg_to_dict(preset.cfg, family.name)
    else:
        config = {"family": family.name}
    fixed = data.get("fixed") or {}
    if not isinstance(fixed, dict):
        raise SpaceError(source, "fixed", "must be a mapping of config fields")
    for key, value in fixed.items():
        if not isinstance(key, str):
            raise SpaceError(source, f"fixed.{key}", "a config field's name must be text")
        if "." in key:
            problem = check_path(config, key)
            if problem:
                raise SpaceError(source, f"fixed.{key}", problem)
            set_path(config, key, value)
        else:
            config[key] = value
    return config


def _references(source: str, data: dict[str, Any]) -> tuple[str, ...]:
    names = data.get("references") or []
    if not isinstance(names, list):
        raise SpaceError(source, "references", "must be a list of preset names")
    found = []
    for name in names:
        try:
            found.append(find_preset(str(name))[1])
        except KeyError as err:
            raise SpaceError(source, "references", str(err.args[0])) from None
    return tuple(found)


def _from_mapping(data: dict[str, Any], source: str, name: str) -> SearchSpace:
    allowed = {
        "family", "description", "resolution", "base", "fixed", "choices", "extra", "references"
    }  # fmt: skip
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise SpaceError(source, unknown[0], f"unknown key; allowed keys: {sorted(allowed)}")
    family_name = data.get("family")
    if not isinstance(family_name, str) or family_name not in FAMILIES:
        raise SpaceError(
            source, "family", f"{family_name!r} is not a family; known: {list(FAMILIES)}"
        )
    family = FAMILIES[family_name]
    resolution = data.get("resolution", 224)
    if not isinstance(resolution, int) or not 0 < resolution <= _MAX_RESOLUTION or resolution % 32:
        raise SpaceError(
            source,
            "resolution",
            f"must be a multiple of 32 from 32 to {_MAX_RESOLUTION}, got {resolution!r}",
        )
    choices = data.get("choices")
    if not isinstance(choices, dict) or not choices:
        raise SpaceError(source, "choices", "must be a non-empty mapping of knob → choices")
    base_config = _base_config(source, data, family)
    try:
        cfg_from_dict(family.cfg_cls, base_config)
    except ValueError as err:
        raise SpaceError(source, "base/fixed", str(err)) from None
    knobs: dict[str, Knob] = {}
    for knob_name, spec in choices.items():
        problem = check_path(base_config, str(knob_name))
        if problem:
            raise SpaceError(source, f"choices.{knob_name}", problem)
        knobs[str(knob_name)] = parse_knob(source, str(knob_name), spec)
    extra = data.get("extra") or {}
    if not isinstance(extra, dict):
        raise SpaceError(source, "extra", "must be a mapping")
    space = SearchSpace(
        name,
        family,
        knobs,
        base_config,
        resolution,
        str(data.get("description", "")),
        source,
        dict(extra),
        _references(source, data),
    )
    _validate_combinations(space)
    return space


def list_spaces(directory: Path = SPACES_DIR) -> list[str]:
    """Names of the space files shipped in ``search_spaces/``."""
    return sorted(p.stem for p in directory.glob("*.yaml"))


@functools.lru_cache(maxsize=64)
def _load_cached(path: str, mtime_ns: int, size: int) -> SearchSpace:
    return _from_mapping(_read_yaml(Path(path)), path, Path(path).stem)


def load_space_text(text: str, name: str, source: str | None = None) -> SearchSpace:
    """Load and validate a space from its YAML text, e.g. the copy a study stores (``space_yaml``).

    Args:
        text: the space file's content.
        name: the space's name (a file's stem).
        source: where the text came from, used in error messages (default ``<name>``).

    Raises:
        SpaceError: the text is malformed or allows an impossible configuration.
    """
    source = source or f"<{name}>"
    return _from_mapping(_parse_yaml(text, source), source, name)


def load_space(name_or_path: str | Path) -> SearchSpace:
    """Load and validate a space by name (``plgvit``) or path to a YAML file.

    Raises:
        SpaceError: the file is missing or malformed, or allows an impossible configuration; the
            message names the file, the key and the problem.

    Example:
        >>> from archlab import load_space
        >>> space = load_space("plgvit")
        >>> cfg = space.to_cfg(space.default())
    """
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = SPACES_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            raise SpaceError(
                str(name_or_path),
                "<space>",
                f"no such space; shipped spaces: {list_spaces()} (or give a path to a .yaml file)",
            )
    elif not path.exists():
        raise SpaceError(str(path), "<file>", "file not found")
    stat = path.stat()
    return copy.deepcopy(_load_cached(str(path), stat.st_mtime_ns, stat.st_size))
