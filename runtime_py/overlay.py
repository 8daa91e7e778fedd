"""Text overlay on video frames with Pillow: a caption with outline and shadow, placed at the top,
centre or bottom, shown over a time window with fade in and out.

Timing: frame `i` is shown at `t_i = (i + 0.5) / fps` seconds (the middle of its display time). The
caption is drawn on exactly the frames with `start <= t_i < end`, at opacity
`min(1, (t_i - start) / fade, (end - t_i) / fade)` (1 everywhere when `fade` is 0), so every frame in
the window shows some text and no frame outside it shows any.

Font: Pillow's built-in scalable font (`ImageFont.load_default(size=...)`, a FreeType font when
Pillow has FreeType, as Pillow >= 10.1 does), else DejaVu Sans Bold if installed, or a TTF/OTF given
as `font`. Long captions wrap at word boundaries and shrink until they fit the frame.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

logger = logging.getLogger(__name__)

POSITIONS = ("top", "center", "bottom")
FALLBACK_FONTS = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
    Path("/usr/share/fonts/TTF/DejaVuSans-Bold.ttf"),
)
MIN_FONT_PX = 6


@dataclass(frozen=True)
class TextOverlay:
    """A caption. `end` None: to the end of the video; `size` None: a tenth of the frame height."""

    text: str
    position: str = "bottom"
    start: float = 0.0
    end: float | None = None
    size: int | None = None
    fade: float = 0.25
    color: tuple[int, int, int] = (255, 255, 255)
    outline: tuple[int, int, int] = (0, 0, 0)
    font: str | None = None

    def verify(self, duration: float) -> None:
        """Raise `ValueError` naming the bad field; `duration` is the video's length in seconds."""
        if not self.text.strip():
            raise ValueError("expected a non-empty caption text, got only whitespace")
        if self.position not in POSITIONS:
            raise ValueError(f"unknown text position {self.position!r}: expected one of {', '.join(POSITIONS)}")
        for name, value in (("start", self.start), ("end", self.end), ("fade", self.fade)):
            if value is not None and not math.isfinite(value):
                raise ValueError(f"expected text {name} to be a finite number of seconds, got {value}")
        if self.start < 0 or self.fade < 0:
            raise ValueError(f"expected text start and fade >= 0 s, got start {self.start}, fade {self.fade}")
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"expected text end after its start ({self.start} s), got {self.end} s")
        if self.start >= duration:
            raise ValueError(f"text starts at {self.start} s, but the video lasts {duration:g} s: expected start < {duration:g}")
        if self.size is not None and self.size < MIN_FONT_PX:
            raise ValueError(f"expected a text size >= {MIN_FONT_PX} px, got {self.size}")
        if self.font is not None:
            if not Path(self.font).is_file():
                raise FileNotFoundError(f"font file not found: {self.font}")
            try:
                ImageFont.truetype(self.font, self.size or MIN_FONT_PX)
            except OSError as err:  # Pillow's "unknown file format" and friends
                raise ValueError(
                    f"font file {self.font} cannot be read as a font: expected a TrueType or OpenType file "
                    f"(.ttf, .otf) ({err})"
                ) from err

    def opacity(self, num_frames: int, fps: float) -> np.ndarray:
        """`(F,)` float in [0, 1]: the caption's opacity on each frame (see the module doc)."""
        t = (np.arange(num_frames) + 0.5) / fps
        end = np.inf if self.end is None else self.end
        inside = (t >= self.start) & (t < end)
        if self.fade == 0:
            return inside.astype(np.float64)
        ramp = np.minimum(1.0, np.minimum((t - self.start) / self.fade, (end - t) / self.fade))
        return np.where(inside, np.clip(ramp, 0.0, 1.0), 0.0)


def load_font(size: int, path: str | None = None) -> ImageFont.FreeTypeFont:
    """A scalable font at `size` px: `path`, else Pillow's built-in, else DejaVu Sans Bold."""
    if path is not None:
        return ImageFont.truetype(path, size)
    font = ImageFont.load_default(size=size)
    if isinstance(font, ImageFont.FreeTypeFont):
        return font
    for candidate in FALLBACK_FONTS:
        if candidate.is_file():
            return ImageFont.truetype(str(candidate), size)
    raise RuntimeError(
        "no scalable font: this Pillow has no FreeType and no DejaVu font is installed; pass a .ttf as font"
    )


def _wrap(text: str, font, max_width: int, draw: ImageDraw.ImageDraw) -> list[str]:
    lines: list[str] = []
    for paragraph in text.splitlines() or [text]:
        line = ""
        for word in paragraph.split():
            trial = f"{line} {word}".strip()
            if not line or draw.textlength(trial, font=font) <= max_width:
                line = trial
            else:
                lines.append(line)
                line = word
        lines.append(line)
    return lines


def _layout(overlay: TextOverlay, width: int, height: int):
    """Font, wrapped text and stroke width that fit the frame (shrinking the font if needed)."""
    draw = ImageDraw.Draw(Image.new("L", (1, 1)))
    size = overlay.size or max(MIN_FONT_PX, height // 10)
    margin = max(2, width // 20)
    while True:
        font = load_font(size, overlay.font)
        stroke = max(1, size // 12)
        text = "\n".join(_wrap(overlay.text, font, width - 2 * margin, draw))
        left, top, right, bottom = draw.multiline_textbbox((0, 0), text, font=font, stroke_width=stroke, align="center")
        if (right - left <= width - 2 * margin and bottom - top <= height - 2 * margin) or size <= MIN_FONT_PX:
            return font, text, stroke, (left, top, right, bottom), margin
        size = max(MIN_FONT_PX, int(size * 0.85))


def render_text_layer(overlay: TextOverlay, width: int, height: int) -> np.ndarray:
    """`(H, W, 4)` uint8 RGBA: the caption with a dark outline and a soft drop shadow, placed."""
    font, text, stroke, (left, top, right, bottom), margin = _layout(overlay, width, height)
    x = (width - (right - left)) / 2 - left
    y = {
        "top": margin - top,
        "center": (height - (bottom - top)) / 2 - top,
        "bottom": height - margin - bottom,
    }[overlay.position]
    layer = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    shadow = max(1, stroke)
    draw.multiline_text((x + shadow, y + shadow), text, font=font, fill=(*overlay.outline, 140), align="center",
                        stroke_width=stroke, stroke_fill=(*overlay.outline, 140))
    draw.multiline_text((x, y), text, font=font, fill=(*overlay.color, 255), align="center",
                        stroke_width=stroke, stroke_fill=(*overlay.outline, 255))
    return np.asarray(layer, dtype=np.uint8)


def apply_overlay(frames: np.ndarray, overlay: TextOverlay, fps: float) -> np.ndarray:
    """`(F, H, W, 3)` uint8 -> a copy with the caption composited (alpha blend) where it is shown."""
    num_frames, height, width, _ = frames.shape
    overlay.verify(num_frames / fps)
    opacity = overlay.opacity(num_frames, fps)
    layer = render_text_layer(overlay, width, height).astype(np.float32)
    rgb, alpha = layer[..., :3], layer[..., 3:] / 255.0  # (H, W, 3), (H, W, 1)
    out = frames.copy()
    for i in np.flatnonzero(opacity):
        a = alpha * np.float32(opacity[i])
        out[i] = np.clip(np.rint(frames[i] * (1.0 - a) + rgb * a), 0, 255).astype(np.uint8)
    logger.debug("caption %r on frames %s", overlay.text, np.flatnonzero(opacity).tolist())
    return out
