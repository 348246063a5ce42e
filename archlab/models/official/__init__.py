"""Official checkpoint names, one module per family with released code.

Each module gives ``CODE`` (where its checkpoints come from), ``EXTRAS`` (official buffers with no
counterpart among our weights, which ours rebuild) and ``rename_for(cfg)``, a function taking each
of our state-dict keys to its official name(s). :mod:`archlab.models.pretrained` loads through them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from archlab.models import mobileformer as _mobileformer_family
from archlab.models import parc as _parc_family
from archlab.models import sbcformer as _sbcformer_family
from archlab.models.official import mobileformer, parc, sbcformer
from archlab.models.official.rename import Rename

__all__ = ["OFFICIAL", "OfficialNames", "Rename"]


@dataclass(frozen=True)
class OfficialNames:
    """How one family's released checkpoints name their tensors."""

    family: str
    code: str
    rename_for: Callable[[Any], Rename]
    extras: re.Pattern[str]


#: Config class → the official names of a model of that config.
OFFICIAL: dict[type, OfficialNames] = {
    _sbcformer_family.SBCFormerCfg: OfficialNames(
        "sbcformer", sbcformer.CODE, sbcformer.rename_for, sbcformer.EXTRAS
    ),
    _mobileformer_family.MobileFormerCfg: OfficialNames(
        "mobileformer", mobileformer.CODE, mobileformer.rename_for, mobileformer.EXTRAS
    ),
    _parc_family.ParCNetCfg: OfficialNames("parc", parc.CODE, parc.rename_for, parc.EXTRAS),
}
