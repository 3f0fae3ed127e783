"""Small images drawn with half-block characters: ``▀`` with the upper pixel as its foreground
colour and the lower pixel as its background, so one character row shows two pixel rows. Plain
truecolor text: it works over any SSH connection and in any terminal Textual runs in.
"""

from __future__ import annotations

import base64

from rich.color import Color
from rich.style import Style
from rich.text import Text

UPPER_HALF = "▀"
"""The character drawn for each pair of pixels (the upper one in its foreground colour)."""


def mistake_pixels(item: dict) -> bytes:
    """The uint8 pixels of one mistake of a ConfusionMatrix event (checked by core.protocol)."""
    return base64.b64decode(item["pixels"])


def _color(pixels: bytes, channels: int, offset: int) -> Color:
    if channels == 3:
        return Color.from_rgb(pixels[offset], pixels[offset + 1], pixels[offset + 2])
    v = pixels[offset]
    return Color.from_rgb(v, v, v)


def half_block(pixels: bytes, height: int, width: int, channels: int = 1, scale: int = 1) -> Text:
    """An image (uint8, row-major height x width x channels, 1 or 3 channels) as lines of ``▀``,
    each pixel repeated ``scale`` times both ways; an odd last pixel row has no background."""
    if len(pixels) != height * width * channels:
        raise ValueError(f"{len(pixels)} bytes for a {height}x{width}x{channels} image")
    rows = [r for r in range(height) for _ in range(scale)]
    cols = [c for c in range(width) for _ in range(scale)]
    text = Text(no_wrap=True, overflow="crop")
    cache: dict[tuple, Style] = {}
    for i in range(0, len(rows), 2):
        if i:
            text.append("\n")
        top, bottom = rows[i], rows[i + 1] if i + 1 < len(rows) else None
        for c in cols:
            key = (top, bottom, c)
            fg = _color(pixels, channels, (top * width + c) * channels)
            bg = _color(pixels, channels, (bottom * width + c) * channels) if bottom is not None else None
            style = cache.get(key) or cache.setdefault(key, Style(color=fg, bgcolor=bg))
            text.append(UPPER_HALF, style)
    return text
