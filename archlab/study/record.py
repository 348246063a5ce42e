"""The typed study record: what ``archlab search`` stores with a study and every reader loads.

A study's record is its settings (:class:`~archlab.study.settings.SearchSpec`) plus what they
resolve to on the machine that created it: the space's full YAML (so any process rebuilds the
space without the file), the family, the input resolution, the CPU and the versions. It is stored
flat in the study's ``archlab_spec`` user attribute, readable by plain Optuna; ``record_version``
says which layout. Studies written before the version field (layout 1) read the same way: missing
settings take their defaults.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any

import optuna

from archlab.space import SearchSpace, load_space_text
from archlab.study.settings import LEGACY_PROBES, SearchSpec
from archlab.study.storage import StorageError

_LEGACY_OBJECTIVES = ("naswot", "latency")  # what studies stored before their objectives had

__all__ = [
    "RECORD_ATTR",
    "RECORD_VERSION",
    "StudyRecord",
    "load_record",
    "space_of",
]

RECORD_ATTR = "archlab_spec"  # the study user attribute that holds the record
RECORD_VERSION = 2  # 1: the untyped dict written before the record had a version
_SETTINGS = tuple(f.name for f in dataclasses.fields(SearchSpec) if f.name != "storage")


@dataclass(frozen=True)
class StudyRecord:
    """One study's settings and the environment they were resolved in."""

    settings: SearchSpec  # ``space`` is the space's name, ``resolution`` the resolved input size
    space_yaml: str | None = None  # None only in studies made before the YAML was stored
    family: str | None = None
    cpu: str | None = None
    torch_version: str | None = None
    archlab_version: str | None = None
    version: int = RECORD_VERSION

    @property
    def space_name(self) -> str:
        return self.settings.space

    @property
    def resolution(self) -> int | None:
        return self.settings.resolution

    @property
    def study_name(self) -> str:
        return self.settings.resolved_name()

    def to_attr(self) -> dict[str, Any]:
        """The flat dict stored in the study (JSON types only)."""
        out = {k: getattr(self.settings, k) for k in _SETTINGS}
        out["objectives"] = list(self.settings.objective_names())
        out.update(
            space_yaml=self.space_yaml,
            family=self.family,
            cpu=self.cpu,
            torch_version=self.torch_version,
            archlab_version=self.archlab_version,
            study_name=self.study_name,
            record_version=self.version,
        )
        return out

    @classmethod
    def from_attr(cls, stored: dict[str, Any]) -> StudyRecord:
        """Read a stored record, of this layout or an older one."""
        values = {k: stored[k] for k in _SETTINGS if k in stored}
        values["objectives"] = tuple(values.get("objectives", _LEGACY_OBJECTIVES))
        for key, legacy in LEGACY_PROBES.items():  # made before the probe settings were stored
            values.setdefault(key, legacy)
        return cls(
            settings=SearchSpec(**values),
            space_yaml=stored.get("space_yaml"),
            family=stored.get("family"),
            cpu=stored.get("cpu"),
            torch_version=stored.get("torch_version"),
            archlab_version=stored.get("archlab_version"),
            version=int(stored.get("record_version", 1)),
        )

    def spec(self, storage: str | None = None) -> SearchSpec:
        """The settings as a spec that runs against ``storage``."""
        return dataclasses.replace(self.settings, storage=storage)

    def space(self) -> SearchSpace:
        """The study's space, rebuilt from the stored YAML at the stored resolution.

        Raises:
            StorageError: the record holds no YAML (a study from an older archlab).
            SpaceError: the stored space no longer validates (e.g. a family changed since).
        """
        if not self.space_yaml:
            raise StorageError(
                f"study {self.study_name!r} does not store its space (space_yaml); "
                "it was created by an older archlab"
            )
        return _space(self.space_yaml, self.space_name, self.study_name, self.resolution)


@functools.lru_cache(maxsize=16)
def _space(text: str, name: str, study: str, resolution: int | None) -> SearchSpace:
    """A stored space, parsed and validated once per process (the dashboard asks often)."""
    space = load_space_text(text, name, f"study {study!r}")
    if resolution:
        space.resolution = int(resolution)
    return space


def load_record(study: optuna.Study) -> StudyRecord:
    """The record of a study made by ``archlab search``.

    Raises:
        StorageError: the study has no record (not made by archlab).
    """
    stored = study.user_attrs.get(RECORD_ATTR)
    if not stored:
        raise StorageError(f"study {study.study_name!r} was not created by archlab search")
    return StudyRecord.from_attr(dict(stored))


def space_of(study: optuna.Study) -> SearchSpace:
    """The space a study searches, rebuilt from its record (see :meth:`StudyRecord.space`)."""
    return load_record(study).space()
