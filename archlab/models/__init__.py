"""Model families and ``build_model``.

``FAMILIES`` maps each family id (the ``--space`` value and the ``family`` key of a config) to its
:class:`~archlab.models.family.Family`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from torch import nn

from archlab.models import hybrid, mobileformer, parc, plgvit, sbcformer
from archlab.models.family import Family, Preset, cfg_from_dict, cfg_to_dict

__all__ = [
    "FAMILIES",
    "Family",
    "Preset",
    "build_model",
    "config_of",
    "find_preset",
    "get_family",
    "list_families",
    "load_config",
]

FAMILIES: dict[str, Family] = {
    "plgvit": Family(
        name="plgvit",
        title="(Light-Weight) PLG-ViT",
        cfg_cls=plgvit.PlgVitCfg,
        model_cls=plgvit.LwPlgVit,
        presets=plgvit.PRESETS,
        paper="Ebert et al., Sensors 2023 / arXiv 2307.09120",
        reduce=plgvit.reduce_to,
    ),
    "mobileformer": Family(
        name="mobileformer",
        title="Mobile-Former",
        cfg_cls=mobileformer.MobileFormerCfg,
        model_cls=mobileformer.MobileFormer,
        presets=mobileformer.PRESETS,
        paper="Chen et al., CVPR 2022 / arXiv 2108.05895",
    ),
    "sbcformer": Family(
        name="sbcformer",
        title="SBCFormer",
        cfg_cls=sbcformer.SBCFormerCfg,
        model_cls=sbcformer.SBCFormer,
        presets=sbcformer.PRESETS,
        paper="Lu et al., WACV 2024 / arXiv 2311.03747",
        reduce=sbcformer.reduce_to,
    ),
    "parc": Family(
        name="parc",
        title="ParC-Net / Fast-ParC (and ParC-ConvNets)",
        cfg_cls=parc.ParCNetCfg,
        model_cls=parc.ParCNet,
        presets=parc.PRESETS,
        paper="Zhang et al., ECCV 2022 / arXiv 2203.03952; Fast-ParC arXiv 2210.04020",
    ),
    "hybrid": Family(
        name="hybrid",
        title="Hybrid (per-stage PLG / hourglass / Former / ParC mixer; ours)",
        cfg_cls=hybrid.HybridCfg,
        model_cls=hybrid.HybridNet,
        presets=hybrid.PRESETS,
        paper="archlab's own design space over the four families' mixers (no paper)",
        reduce=hybrid.reduce_to,
    ),
}


def list_families() -> list[str]:
    return list(FAMILIES)


def get_family(name: str) -> Family:
    """Family by id.

    Raises:
        KeyError: unknown id; the message lists the known ones.
    """
    try:
        return FAMILIES[name]
    except KeyError:
        raise KeyError(f"unknown family {name!r}; known families: {list(FAMILIES)}") from None


def find_preset(name: str) -> tuple[Family, str, Preset]:
    """Look a preset up by name in every family (``lw-plgvit-a`` and ``lw_plgvit_a`` both work)."""
    key = name.replace("-", "_").lower()
    for family in FAMILIES.values():
        if key in family.presets:
            return family, key, family.presets[key]
    known = [p for f in FAMILIES.values() for p in f.presets]
    raise KeyError(f"unknown preset {name!r}; known presets: {known}")


def load_config(config: dict[str, Any] | str | Path) -> tuple[Family, Any]:
    """Resolve a config dict or YAML/JSON file into (family, config dataclass).

    A config holds ``family`` and the fields of that family's config; it may instead name a
    ``preset`` and override some of its top-level fields.

    Raises:
        ValueError: the config or file is malformed; the message says where.
    """
    if isinstance(config, (str, Path)):
        path = Path(config)
        try:
            text = path.read_text()
        except OSError as err:
            raise ValueError(f"cannot read config file {path}: {err.strerror}") from None
        try:
            data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as err:
            raise ValueError(f"{path}: not valid YAML/JSON: {err}") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a config must be a mapping with a 'family' key")
        config = data
    config = dict(config)
    if "preset" in config:
        family, _, preset = find_preset(str(config.pop("preset")))
        base = cfg_to_dict(preset.cfg, family.name)
        config = {**base, **config}
    if "family" not in config:
        raise ValueError(f"config has no 'family' key; known families: {list(FAMILIES)}")
    try:
        family = get_family(str(config["family"]))
    except KeyError as err:
        raise ValueError(str(err.args[0])) from None
    return family, cfg_from_dict(family.cfg_cls, config)


def config_of(model_or_cfg: Any, family: str | None = None) -> dict[str, Any]:
    """The plain config dict that ``build_model`` accepts, for a model built here or a config."""
    cfg = getattr(model_or_cfg, "cfg", model_or_cfg)
    if family is None:
        family = next(f.name for f in FAMILIES.values() if isinstance(cfg, f.cfg_cls))
    return cfg_to_dict(cfg, family)


def build_model(config: dict[str, Any] | str | Path, num_classes: int = 1000) -> nn.Module:
    """Build a model from a config dict (with its ``family`` key) or a YAML/JSON config file.

    Example:
        >>> import archlab
        >>> model = archlab.build_model({"preset": "lw_plgvit_r"})
        >>> sum(p.numel() for p in model.parameters()) > 4_000_000
        True
    """
    family, cfg = load_config(config)
    return family.build(cfg, num_classes=num_classes)
