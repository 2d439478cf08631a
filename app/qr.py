"""QR rendering shared by boards, pickup codes and check-in: PNG or SVG bytes from text."""

from __future__ import annotations

import io

import qrcode
import qrcode.image.svg
from qrcode.constants import ERROR_CORRECT_M

MIN_SIZE, MAX_SIZE = 128, 2048


def _code(data: str) -> qrcode.QRCode:
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=4)
    code.add_data(data)
    code.make(fit=True)
    return code


def png(data: str, size: int = 512) -> bytes:
    """A square PNG of `size` pixels (error correction M), crisp: modules scaled by whole pixels
    where possible, then resized with nearest-neighbour to the exact size."""
    from PIL import Image

    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"size must be {MIN_SIZE}–{MAX_SIZE}")
    code = _code(data)
    modules = code.modules_count + 2 * code.border
    code.box_size = max(1, size // modules)
    image = code.make_image(fill_color="black", back_color="white").get_image().convert("L")
    if image.size != (size, size):
        image = image.resize((size, size), Image.NEAREST)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def svg(data: str) -> bytes:
    """A scalable SVG path image (no Pillow needed)."""
    image = _code(data).make_image(image_factory=qrcode.image.svg.SvgPathImage)
    out = io.BytesIO()
    image.save(out)
    return out.getvalue()


def svg_inline(data: str) -> str:
    """The SVG element alone, for embedding in an HTML page."""
    text = svg(data).decode()
    return text[text.index("<svg"):]
