"""Report photos: proved to be an image by decoding it, then re-encoded clean.

What leaves here is a new JPEG drawn from the decoded pixels only — the EXIF orientation applied,
then no EXIF (GPS included), ICC, XMP, comments or any other metadata — at most 2048 px on the
long side. A file that does not decode as a JPEG, PNG or WebP is refused (422); one larger
than the upload limit (413); one whose pixel count is past MAX_PIXELS (a decompression bomb:
a small file that would expand to gigabytes) is refused from its header, before decoding.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

from flask import Response, current_app, request
from PIL import Image, ImageOps, UnidentifiedImageError
from werkzeug.exceptions import RequestEntityTooLarge

from app.errors import APIError, register_messages
from app.i18n import N_

FORMATS = {"JPEG", "PNG", "WEBP"}
LONG_SIDE = 2048
# Our own limit, checked from the header: 50 megapixels is the largest phone camera mode.
# (Pillow's global Image.MAX_IMAGE_PIXELS is left as it is for the rest of the code.)
MAX_PIXELS = 50_000_000
JPEG_QUALITY = 85

register_messages({
    "photo_too_large": N_("照片不能超过 {limit} MB，请换一张或压缩后再上传。"),
    "photo_not_an_image": N_("上传的文件不是可以识别的图片，请上传 JPEG、PNG 或 WebP 格式的照片。"),
    "photo_too_many_pixels": N_("照片的像素太多（超过 {limit} 万像素），请换一张或缩小后再上传。"),
})

_DECODE_ERRORS = (OSError, ValueError, SyntaxError, TypeError, EOFError, KeyError, IndexError,
                  struct.error, UnidentifiedImageError, MemoryError, ZeroDivisionError)


@dataclass(frozen=True)
class CleanPhoto:
    content: bytes
    width: int
    height: int
    content_type: str = "image/jpeg"
    extension: str = "jpg"


def limit_bytes() -> int:
    return current_app.config["MAX_UPLOAD_BYTES"]


def too_large() -> APIError:
    return APIError("photo_too_large", 413, limit=limit_bytes() // (1024 * 1024))


def read_upload(stream) -> bytes:
    """The uploaded file's bytes, reading at most one byte past the limit."""
    content = stream.read(limit_bytes() + 1)
    if len(content) > limit_bytes():
        raise too_large()
    return content


def from_request(field: str = "photo") -> CleanPhoto | None:
    """The request's uploaded photo, cleaned; None when none was chosen (a browser sends an
    empty part then). Refusals are APIErrors: too large (413), not an image, too many pixels."""
    try:
        upload = request.files.get(field)
    except RequestEntityTooLarge:
        raise too_large() from None
    if upload is None:
        return None
    content = read_upload(upload.stream)
    if not content and not upload.filename:
        return None
    return clean(content, field)


def clean(content: bytes, field: str = "photo") -> CleanPhoto:
    """Decode `content` fully and return it re-encoded without metadata; 422/413 if refused."""
    def refused(slug: str = "photo_not_an_image", **params) -> APIError:
        return APIError(slug, 422, errors={field: ["Invalid input."]}, **params)

    try:
        with Image.open(io.BytesIO(content)) as image:
            if image.format not in FORMATS:
                raise refused()
            width, height = image.size
            if width < 1 or height < 1:
                raise refused()
            if width * height > MAX_PIXELS:
                raise refused("photo_too_many_pixels", limit=MAX_PIXELS // 10_000)
            if image.format == "JPEG":
                # Decode at a reduced scale when the photo is much larger than we keep (faster,
                # and every block of the file is still decoded).
                image.draft("RGB", (LONG_SIDE, LONG_SIDE))
            image.load()
            upright = ImageOps.exif_transpose(image)
            picture = _flatten(upright)
            picture.thumbnail((LONG_SIDE, LONG_SIDE), Image.Resampling.LANCZOS)
            picture.info = {}  # nothing of the original's metadata travels on
            out = io.BytesIO()
            picture.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True, exif=b"")
            return CleanPhoto(out.getvalue(), picture.width, picture.height)
    except APIError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):  # Pillow's own limit
        raise refused("photo_too_many_pixels", limit=MAX_PIXELS // 10_000) from None
    except _DECODE_ERRORS:
        raise refused() from None


def _flatten(image: Image.Image) -> Image.Image:
    """RGB pixels only (transparency laid on white), as a new image without the original's info."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        image = image.convert("I").point(lambda v: v / 256).convert("L")
    return image.convert("RGB") if image.mode != "RGB" else image.copy()


def response(content: bytes, content_type: str) -> Response:
    """A stored photo as served: only to whoever was allowed to load it, never sniffed."""
    answer = Response(content, mimetype=content_type)
    answer.headers["Cache-Control"] = "private, max-age=3600"
    answer.headers["X-Content-Type-Options"] = "nosniff"
    answer.headers["Content-Disposition"] = "inline"
    return answer
