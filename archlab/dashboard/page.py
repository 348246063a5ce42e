"""The app's page furniture: a favicon drawn here (the page must fetch nothing from outside, and
Streamlit's emoji and icon favicons come from a CDN) and a storage path that wraps only at its
separators."""

from __future__ import annotations

import html
import io

import numpy as np
from PIL import Image

__all__ = ["breakable_path", "favicon"]

_SIZE = 32
_POINTS = ((6, 24), (11, 17), (16, 13), (23, 10), (27, 8))  # a rising front, (x, y) in pixels
_BLUE, _GREEN = (31, 119, 180), (44, 160, 44)


def favicon() -> bytes:
    """A 32×32 PNG: a Pareto front as a green step line through blue points."""
    icon = np.full((_SIZE, _SIZE, 3), 255, dtype=np.uint8)
    for (x0, y0), (x1, y1) in zip(_POINTS, _POINTS[1:]):
        icon[y0 - 1 : y0 + 1, x0 : x1 + 1] = _GREEN  # along, then up: a step
        icon[y1 : y0 + 1, x1 - 1 : x1 + 1] = _GREEN
    for x, y in _POINTS:
        icon[y - 2 : y + 3, x - 2 : x + 3] = _BLUE
    png = io.BytesIO()
    Image.fromarray(icon).save(png, format="PNG")
    return png.getvalue()


def breakable_path(text: str) -> str:
    """``text`` as HTML that may wrap after '/', ':' and '?' only (never inside a name)."""
    escaped = html.escape(text)
    for sep in ("/", ":", "?"):
        escaped = escaped.replace(sep, sep + "<wbr>")
    return f'<span style="word-break: keep-all; overflow-wrap: normal">{escaped}</span>'
