"""Helpers shared by the problem-report tests (issue 9). Not a test module."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import sqlalchemy as sa
from PIL import Image

from tests.helpers import reading

API = "/api/v1"
FIELDS = {"category": "fire_lane", "description": "3 栋楼下消防通道被电动车堵住了。",
          "location": "远创樾府 3 栋东侧"}
GPS_IFD = 0x8825


# --- images -------------------------------------------------------------------------------

def jpeg(width: int = 64, height: int = 48, *, color=(200, 30, 30), gps: bool = False,
         orientation: int | None = None, comment: bytes | None = None) -> bytes:
    """A JPEG; with `gps`, EXIF holding a GPS position (and a camera make) and an ICC profile."""
    image = Image.new("RGB", (width, height), color)
    image.paste((20, 20, 220), (0, 0, width // 2, height // 2))  # a blue top-left corner
    exif = Image.Exif()
    if gps:
        exif[0x010F] = "SpyCam"  # Make
        exif.get_ifd(GPS_IFD).update({1: "N", 2: (31.0, 20.0, 6.0), 3: "E",
                                      4: (118.0, 22.0, 33.0)})
    if orientation is not None:
        exif[0x0112] = orientation
    out = io.BytesIO()
    options = {"exif": exif.tobytes()} if (gps or orientation) else {}
    if gps:
        options["icc_profile"] = b"\0" * 128 + b"acspFAKEPROFILE"
    if comment:
        options["comment"] = comment
    image.save(out, "JPEG", quality=90, **options)
    return out.getvalue()


def png(width: int = 40, height: int = 30, *, alpha: bool = False) -> bytes:
    image = Image.new("RGBA" if alpha else "RGB", (width, height),
                      (0, 128, 0, 100) if alpha else (0, 128, 0))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def webp(width: int = 40, height: int = 30) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (0, 0, 128)).save(out, "WEBP")
    return out.getvalue()


def png_bomb(side: int = 20_000) -> bytes:
    """A valid PNG header claiming side×side pixels (400 MP) with a tiny compressed body."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1-bit greyscale
    row = b"\0" + b"\0" * (side // 8)
    body = zlib.compress(row * 200, 9)  # only a few rows: decoding would need all of them
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body)
            + chunk(b"IEND", b""))


def noise_jpeg(target_bytes: int) -> bytes:
    """A JPEG larger than `target_bytes` (random noise compresses badly)."""
    import os

    side = 1024
    while True:
        image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
        out = io.BytesIO()
        image.save(out, "JPEG", quality=100)
        if out.tell() > target_bytes:
            return out.getvalue()
        side *= 2


# --- requests -----------------------------------------------------------------------------

def file_report(client, cid: int, headers: dict, photo: bytes | None = None, **fields):
    """POST a report as multipart (with `photo`) or JSON (without)."""
    body = {**FIELDS, **fields}
    if photo is None:
        return client.post(f"{API}/communities/{cid}/reports", json=body, headers=headers)
    data = {**body, "photo": (io.BytesIO(photo), "photo.jpg")}
    return client.post(f"{API}/communities/{cid}/reports", data=data, headers=headers,
                       content_type="multipart/form-data")


def act(client, rid: int, action: str, headers: dict, body: dict):
    return client.post(f"{API}/reports/{rid}/{action}", json=body, headers=headers)


# --- state --------------------------------------------------------------------------------

def stored_files(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).rglob("*") if p.is_file())


def report_rows(app) -> dict:
    """What a refused request must leave as it was."""
    from app.audit import AuditEvent
    from app.extensions import db
    from app.ledger.models import Transfer
    from app.reports.models import Report, ReportEvent, ReportSettings

    with reading(app):
        def count(model):
            return db.session.scalar(sa.select(sa.func.count()).select_from(model))

        return {"reports": count(Report), "events": count(ReportEvent),
                "settings": count(ReportSettings), "transfers": count(Transfer),
                "audit": count(AuditEvent),
                "states": sorted(db.session.execute(sa.select(
                    Report.id, Report.status, Report.level, Report.assigned_to,
                    Report.duplicate_of)).all())}


def balance(app, cid: int, uid: int) -> int:
    from app.ledger import service as ledger

    with reading(app):
        account = ledger.find_user_account(cid, uid)
        return account.balance if account else 0
