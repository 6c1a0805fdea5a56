"""A member's reference picture for a character, made safe to keep: checked and re-encoded.

Whatever a member uploads (Discord attachment, Slack file, a story file's `reference =`)
goes through `clean_reference` before it is stored or used: the type is read from the
bytes (not the file name), the size and dimensions are bounded, and the picture is
re-encoded as a plain RGB PNG, so EXIF (camera, GPS, owner) and any other metadata chunk
is gone. The stored file is named by the hash of the clean bytes (`reference_name`), so
the same picture is kept once and the identity spec can name it.
"""

from __future__ import annotations

import hashlib
import io
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

from storyloom.story.errors import InvalidInput, LimitExceeded

ACCEPTED_FORMATS = frozenset({"PNG", "JPEG", "WEBP"})
MAX_UPLOAD_BYTES = 8 * 1024 * 1024
MAX_SIDE = 4096  # larger pictures are refused before decoding them whole
KEEP_SIDE = 1024  # the adapter's encoder sees 224 px; 1024 keeps a sheet-sized original


def clean_reference(data: bytes, *, max_bytes: int = MAX_UPLOAD_BYTES) -> bytes:
    """The picture as clean PNG bytes, or a domain error with one sentence."""
    if not data:
        raise InvalidInput("The reference picture is empty.")
    if len(data) > max_bytes:
        raise LimitExceeded(
            f"The reference picture is {len(data) / 2**20:.1f} MiB; "
            f"the limit is {max_bytes / 2**20:.0f} MiB."
        )
    with warnings.catch_warnings():
        # Pillow warns (and later raises) on decompression bombs; the side check below
        # refuses them with our own sentence instead.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            picture = Image.open(io.BytesIO(data))
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError):
            raise InvalidInput("The reference must be a PNG, JPEG or WebP picture.") from None
        if picture.format not in ACCEPTED_FORMATS:
            raise InvalidInput("The reference must be a PNG, JPEG or WebP picture.")
        if max(picture.size) > MAX_SIDE:
            raise LimitExceeded(
                f"The reference picture is {picture.width}×{picture.height}; "
                f"the limit is {MAX_SIDE} px on each side."
            )
        try:
            picture.load()
        except (OSError, Image.DecompressionBombError):
            raise InvalidInput("The reference picture is damaged; upload it again.") from None
    # A phone photo's EXIF orientation is applied before EXIF is dropped, or it turns sideways.
    rgb = _flatten(ImageOps.exif_transpose(picture) or picture)
    rgb.thumbnail((KEEP_SIDE, KEEP_SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    rgb.save(out, format="PNG", optimize=False)  # a new file: no EXIF, text or ICC chunks
    return out.getvalue()


def reference_name(clean: bytes) -> str:
    """The stored file's name: the SHA-256 of the clean bytes (same picture, same file)."""
    return hashlib.sha256(clean).hexdigest() + ".png"


def _flatten(picture: Image.Image) -> Image.Image:
    """RGB on white: transparency would reach the encoder as black otherwise."""
    if picture.mode in {"RGBA", "LA", "P"}:
        rgba = picture.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return picture.convert("RGB")
