"""A reference picture is checked by its bytes and kept without metadata."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from storyloom.generation.reference_image import clean_reference, reference_name
from storyloom.story.errors import InvalidInput, LimitExceeded


def encoded(image: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def photo_with_exif(orientation: int = 1) -> bytes:
    image = Image.new("RGB", (40, 20), (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0112] = orientation  # Orientation
    exif[0x8825] = {1: "N"}  # GPS IFD
    return encoded(image, "JPEG", exif=exif.tobytes())


def test_exif_is_gone_and_the_picture_is_a_png() -> None:
    clean = clean_reference(photo_with_exif())
    kept = Image.open(io.BytesIO(clean))
    assert kept.format == "PNG"
    assert not kept.getexif()
    assert b"PhoneMaker" not in clean
    assert kept.size == (40, 20)


def test_the_exif_orientation_is_applied_before_it_is_dropped() -> None:
    kept = Image.open(io.BytesIO(clean_reference(photo_with_exif(orientation=6))))
    assert kept.size == (20, 40)


def test_transparency_becomes_white_not_black() -> None:
    clear = encoded(Image.new("RGBA", (8, 8), (0, 0, 0, 0)), "PNG")
    kept = Image.open(io.BytesIO(clean_reference(clear)))
    assert kept.mode == "RGB"
    assert kept.getpixel((4, 4)) == (255, 255, 255)


@pytest.mark.parametrize(
    "data",
    [b"", b"GIF89a not really", b"%PDF-1.7\n", encoded(Image.new("RGB", (4, 4)), "GIF")],
)
def test_anything_but_a_png_jpeg_or_webp_is_refused(data: bytes) -> None:
    with pytest.raises(InvalidInput):
        clean_reference(data)


def test_a_truncated_picture_is_refused() -> None:
    whole = encoded(Image.effect_noise((64, 64), 40).convert("RGB"), "PNG")
    with pytest.raises(InvalidInput, match="damaged"):
        clean_reference(whole[: len(whole) // 2])


def test_size_limits_are_named() -> None:
    big = encoded(Image.new("RGB", (4100, 8)), "PNG")
    with pytest.raises(LimitExceeded, match="4096 px"):
        clean_reference(big)
    with pytest.raises(LimitExceeded, match="the limit is 1 MiB"):
        clean_reference(b"\x89PNG" + bytes(2 * 2**20), max_bytes=2**20)


def test_large_pictures_are_kept_at_1024_px_and_named_by_their_hash() -> None:
    clean = clean_reference(encoded(Image.new("RGB", (2048, 1024), (1, 2, 3)), "WEBP"))
    assert Image.open(io.BytesIO(clean)).size == (1024, 512)
    assert reference_name(clean) == reference_name(clean_reference(clean))
    assert reference_name(clean).endswith(".png") and len(reference_name(clean)) == 68
