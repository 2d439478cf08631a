"""Report photos (issue 9): decoded to prove they are images, re-encoded without EXIF/GPS or any
metadata, at most 2048 px; refused with 422/413 and nothing stored; served only to the reporter
and the community's organisers."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.helpers import assert_error, reading
from tests.report_helpers import (
    API,
    FIELDS,
    GPS_IFD,
    file_report,
    jpeg,
    noise_jpeg,
    png,
    png_bomb,
    report_rows,
    stored_files,
    webp,
)

pytestmark = pytest.mark.usefixtures("uploads")  # photos in a folder of the test's own


@pytest.fixture
def cid(world) -> int:
    return world.community.id


def assert_clean(content: bytes, longest: int | None = None) -> Image.Image:
    """A JPEG carrying nothing but pixels."""
    image = Image.open(io.BytesIO(content))
    image.load()
    assert image.format == "JPEG"
    assert not image.getexif() and not image.getexif().get_ifd(GPS_IFD)
    assert {"exif", "icc_profile", "xmp", "comment", "photoshop"}.isdisjoint(image.info), image.info
    for marker in (b"Exif", b"SpyCam", b"acspFAKE", b"http://ns.adobe.com/xap", b"secret"):
        assert marker not in content, marker
    if longest is not None:
        assert max(image.size) == longest
    return image


def test_a_photo_with_gps_exif_is_stored_and_served_without_any_metadata(client, app, cid, vol,
                                                                         org, uploads):
    original = jpeg(gps=True, comment=b"secret note")
    assert b"SpyCam" in original and Image.open(io.BytesIO(original)).getexif().get_ifd(GPS_IFD)
    response = file_report(client, cid, vol, photo=original)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["has_photo"] and body["photo_url"] == f"{API}/reports/{body['id']}/photo"
    assert (body["photo_width"], body["photo_height"]) == (64, 48)

    (stored,) = stored_files(uploads)
    assert_clean(stored.read_bytes())
    for headers in (vol, org):
        served = client.get(body["photo_url"], headers=headers)
        assert served.status_code == 200
        assert served.mimetype == "image/jpeg"
        assert "private" in served.headers["Cache-Control"]
        assert served.headers["X-Content-Type-Options"] == "nosniff"
        assert served.data == stored.read_bytes()
        assert_clean(served.data)


def test_exif_orientation_is_applied_before_it_is_dropped(client, cid, vol, uploads):
    # Orientation 6: the camera was turned; the upright picture is 48 wide and 64 high.
    response = file_report(client, cid, vol, photo=jpeg(64, 48, orientation=6))
    body = response.get_json()
    assert (body["photo_width"], body["photo_height"]) == (48, 64)
    image = assert_clean(stored_files(uploads)[0].read_bytes())
    # The blue corner (top-left as shot) is now top-right.
    red, _green, blue = image.getpixel((image.width - 3, 3))
    assert blue > 150 and red < 100


def test_large_photos_are_scaled_to_2048_on_the_long_side(client, cid, vol, uploads):
    response = file_report(client, cid, vol, photo=jpeg(4096, 3072))
    assert response.status_code == 201
    assert (response.get_json()["photo_width"], response.get_json()["photo_height"]) == (2048, 1536)
    assert_clean(stored_files(uploads)[0].read_bytes(), longest=2048)


@pytest.mark.parametrize("content", [png(), png(alpha=True), webp()], ids=["png", "rgba", "webp"])
def test_png_and_webp_are_taken_and_stored_as_clean_jpeg(client, cid, vol, uploads, content):
    response = file_report(client, cid, vol, photo=content)
    assert response.status_code == 201, response.get_json()
    assert_clean(stored_files(uploads)[0].read_bytes())


@pytest.mark.parametrize("content, slug", [
    (b"not an image at all", "photo_not_an_image"),
    (b"%PDF-1.4\n" + b"0" * 500, "photo_not_an_image"),
    (b"GIF89a" + b"\0" * 100, "photo_not_an_image"),
    (jpeg()[:200], "photo_not_an_image"),  # a truncated JPEG
    (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "photo_not_an_image"),
    (png_bomb(20_000), "photo_too_many_pixels"),  # 400 MP
    (png_bomb(8_000), "photo_too_many_pixels"),  # 64 MP: under Pillow's limit, over ours
], ids=["text", "pdf", "gif", "truncated", "svg", "bomb-400mp", "bomb-64mp"])
def test_files_that_are_not_photos_we_take_are_422_and_nothing_is_stored(
        client, app, cid, vol, uploads, content, slug):
    before = report_rows(app)
    body = assert_error(file_report(client, cid, vol, photo=content), 422, slug)
    assert "photo" in body["errors"]
    assert report_rows(app) == before
    assert stored_files(uploads) == []


def test_a_gif_is_refused_even_though_it_decodes(client, app, cid, vol, uploads):
    out = io.BytesIO()
    Image.new("RGB", (10, 10)).save(out, "GIF")
    assert_error(file_report(client, cid, vol, photo=out.getvalue()), 422, "photo_not_an_image")
    assert stored_files(uploads) == []


def test_an_11_mb_photo_is_413_before_it_is_read_and_nothing_is_stored(client, app, cid, vol,
                                                                       uploads):
    big = noise_jpeg(11 * 1024 * 1024)
    before = report_rows(app)
    body = assert_error(file_report(client, cid, vol, photo=big), 413, "photo_too_large")
    assert "10 MB" in body["message"]
    assert report_rows(app) == before and stored_files(uploads) == []


def test_a_photo_just_over_the_limit_inside_a_small_enough_body_is_413(make_app, factory, world,
                                                                      tmp_path):
    # With a smaller limit, the body passes the Content-Length check (the form overhead) but
    # the photo itself is one byte over: still refused, nothing stored.
    small = make_app(MAX_UPLOAD_BYTES=1000, UPLOAD_DIR=str(tmp_path / "small"))
    client = small.test_client()
    headers = factory.headers(world.volunteer)
    content = png(200, 200)
    assert len(content) < 1000
    assert file_report(client, world.community.id, headers, photo=content).status_code == 201
    padded = jpeg() + b"\0" * (1001 - len(jpeg()))
    assert_error(file_report(client, world.community.id, headers, photo=padded), 413,
                 "photo_too_large")
    assert len(stored_files(tmp_path / "small")) == 1


def test_other_api_routes_keep_json_and_the_1_mib_limit(client, world, factory):
    headers = factory.headers(world.organiser)
    blob = {"file": (io.BytesIO(b"x" * (2 * 1024 * 1024)), "x.bin")}
    response = client.post(f"{API}/communities/{world.community.id}/boards", data=blob,
                           headers=headers, content_type="multipart/form-data")
    assert_error(response, 415, "unsupported_media_type")  # only upload routes take files
    response = client.post(f"{API}/communities/{world.community.id}/boards",
                           json={"name": "x" * (2 * 1024 * 1024)}, headers=headers)
    assert_error(response, 413, "payload_too_large")


def test_a_multipart_report_without_a_photo_and_with_an_empty_file_part(client, cid, vol,
                                                                        uploads):
    url = f"{API}/communities/{cid}/reports"
    response = client.post(url, data=FIELDS, headers=vol, content_type="multipart/form-data")
    assert response.status_code == 201 and response.get_json()["has_photo"] is False
    empty = {**FIELDS, "photo": (io.BytesIO(b""), "")}
    response = client.post(url, data=empty, headers=vol, content_type="multipart/form-data")
    assert response.status_code == 201 and response.get_json()["has_photo"] is False
    assert stored_files(uploads) == []


def test_multipart_fields_are_checked_like_json(client, app, cid, vol, uploads):
    url = f"{API}/communities/{cid}/reports"
    cases = [({**FIELDS, "category": "pothole"}, "category"),
             ({k: v for k, v in FIELDS.items() if k != "location"}, "location"),
             ({**FIELDS, "description": "长" * 1001}, "description"),
             ({**FIELDS, "status": "resolved"}, "status"),
             ({**FIELDS, "photo": "not a file"}, "photo"),
             ({**FIELDS, "other": (io.BytesIO(jpeg()), "x.jpg")}, "other")]
    for data, field in cases:
        with_photo = {**data} if "photo" in data else {**data, "photo": (io.BytesIO(jpeg()), "a.jpg")}
        response = client.post(url, data=with_photo, headers=vol,
                               content_type="multipart/form-data")
        body = assert_error(response, 422, "validation_error", note=field)
        assert field in body["errors"], (field, body)
    assert report_rows(app)["reports"] == 0 and stored_files(uploads) == []


def test_a_failure_after_storing_leaves_no_file(client, app, cid, vol, uploads, monkeypatch):
    """The request fails after the photo was stored (here: writing the timeline): the
    transaction rolls back and the stored file is deleted with it."""
    from app.reports import service

    def broken(*_args, **_kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(service, "_event", broken)
    response = file_report(client, cid, vol, photo=jpeg())
    assert_error(response, 500, "internal_error")
    assert report_rows(app)["reports"] == 0
    assert stored_files(uploads) == []


def test_the_photo_is_served_only_to_the_reporter_and_organisers(client, world, factory, cid,
                                                                 vol, org):
    rid = file_report(client, cid, vol, photo=jpeg()).get_json()["id"]
    url = f"{API}/reports/{rid}/photo"
    assert client.get(url, headers=factory.headers(world.admin)).status_code == 200
    for who in (world.resident, world.outsider, world.other_organiser, world.other_volunteer):
        assert_error(client.get(url, headers=factory.headers(who)), 404, note=who.display_name)
    assert_error(client.get(url), 401)
    without = file_report(client, cid, vol, category="other").get_json()["id"]
    assert_error(client.get(f"{API}/reports/{without}/photo", headers=org), 404)


def test_the_stored_key_is_unguessable_and_kept_in_the_row(client, app, cid, vol, uploads):
    from app.extensions import db
    from app.reports.models import Report

    rid = file_report(client, cid, vol, photo=jpeg()).get_json()["id"]
    with reading(app):
        report = db.session.get(Report, rid)
        key, size = report.photo_key, report.photo_bytes
    (stored,) = stored_files(uploads)
    assert stored.relative_to(uploads).as_posix() == key
    assert len(stored.stem) == 32 and stored.stat().st_size == size


def test_the_storage_refuses_keys_that_leave_its_folder(tmp_path):
    from app.storage import LocalDiskStorage

    store = LocalDiskStorage(tmp_path)
    for key in ("../x.jpg", "/etc/passwd", "a/../../b.jpg", "A.JPG", "x"):
        with pytest.raises(ValueError):
            store.put(key, b"x")
    store.put("reports/1/abc.jpg", b"data")
    with store.open("reports/1/abc.jpg") as handle:
        assert handle.read() == b"data"
    store.delete("reports/1/abc.jpg")
    store.delete("reports/1/abc.jpg")  # twice: no error
    with pytest.raises(FileNotFoundError):
        store.open("reports/1/abc.jpg")
