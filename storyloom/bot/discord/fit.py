"""Results within a channel's upload limit: pages saved smaller, clips re-encoded smaller.

Discord refuses a message whose attachments are over the channel's limit, so the files of
a result are taken in order (the main result first) and each must fit the room the
earlier ones left. One that does not is shrunk: an image is saved again as JPEG, at lower
and lower resolutions; an MP4 is re-encoded with the ffmpeg that imageio-ffmpeg ships,
smaller and with its bitrate capped for the room left. A file
that still does not fit, or one that cannot be shrunk without changing what it is (a PDF,
a ZIP), is left out and named in the post. Nothing over the limit is ever attached.
"""

from __future__ import annotations

import asyncio
import io
import logging
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from storyloom.generation.mp4_ladder import INLINE_H264, max_bitrate, rungs

log = logging.getLogger(__name__)
MAX_ATTACHMENTS = 10  # Discord's limit per message
MIN_IMAGE_SIDE = 256  # a page smaller than this is not worth posting
IMAGE_TYPES = {".png", ".jpg", ".jpeg"}  # stills only: a WebP or GIF may be a clip


@dataclass(frozen=True)
class Attachment:
    """A file to attach: the result file itself, or a smaller copy of it."""

    path: Path  # what is uploaded
    original: Path  # the result file it stands for
    original_bytes: int

    @property
    def shrunk(self) -> bool:
        """Whether a smaller copy is sent instead of the file itself."""
        return self.path != self.original


@dataclass
class Fitted:
    """What one result message carries, and the files that could not go with it."""

    attachments: list[Attachment] = field(default_factory=list)
    left_out: list[tuple[Path, int]] = field(default_factory=list)  # (file, its bytes)

    @property
    def total(self) -> int:
        """Bytes attached in all."""
        return sum(a.path.stat().st_size for a in self.attachments)


async def fit_files(files: Sequence[Path], limit: int, work_dir: Path) -> Fitted:
    """Choose (and where needed shrink into `work_dir`) the files one message can carry
    within `limit` bytes in all. Shrinking runs in a thread: the bot keeps answering."""
    fitted = Fitted()
    room = limit
    for path in files:
        size = path.stat().st_size
        if len(fitted.attachments) >= MAX_ATTACHMENTS:
            fitted.left_out.append((path, size))
            continue
        chosen = path if size <= room else await asyncio.to_thread(shrink, path, room, work_dir)
        if chosen is None:
            fitted.left_out.append((path, size))
            continue
        fitted.attachments.append(Attachment(chosen, path, size))
        room -= chosen.stat().st_size
    return fitted


def shrink(path: Path, limit: int, work_dir: Path) -> Path | None:
    """A copy of `path` in `work_dir` of at most `limit` bytes, or None if none can be made."""
    suffix = path.suffix.lower()
    if limit <= 0:
        return None
    if suffix in IMAGE_TYPES:
        return shrink_image(path, limit, work_dir)
    if suffix == ".mp4":
        return shrink_mp4(path, limit, work_dir)
    return None  # PDF, ZIP: shrinking them would change what they are


def shrink_image(path: Path, limit: int, work_dir: Path) -> Path | None:
    """A JPEG copy of an image: at full size, then at the scale its size predicts, then
    smaller until it fits. (Packing a PNG harder saves a few percent and takes seconds.)"""
    with Image.open(path) as opened:
        opened.load()
        image = opened.convert("RGBA") if opened.mode in ("P", "LA") else opened.copy()
    work_dir.mkdir(parents=True, exist_ok=True)
    # JPEG has no alpha: what is transparent is shown on white, as Discord's light theme does
    flat = Image.new("RGB", image.size, "white")
    flat.paste(image, mask=image.getchannel("A") if image.mode == "RGBA" else None)
    out = work_dir / f"{path.stem}.jpg"
    data = _encoded(flat, "JPEG", quality=85, optimize=True)
    scale = 1.0
    while len(data) > limit:
        # bytes go roughly with the pixel count: aim just under, then step down
        scale *= min(0.8, (limit / len(data)) ** 0.5 * 0.95)
        size = (round(flat.width * scale), round(flat.height * scale))
        if max(size) < MIN_IMAGE_SIDE:
            return None
        data = _encoded(flat.resize(size, Image.Resampling.LANCZOS), "JPEG", quality=80)
    out.write_bytes(data)
    return out


def _encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    data = io.BytesIO()
    image.save(data, fmt, **options)
    return data.getvalue()


def video_facts(path: Path) -> tuple[int, int, float]:
    """Width, height and seconds of a video, as ffmpeg reads them."""
    import imageio_ffmpeg

    frames = imageio_ffmpeg.read_frames(str(path))
    try:
        meta = next(frames)
    finally:
        frames.close()
    width, height = meta["size"]
    return int(width), int(height), float(meta["duration"])


def shrink_mp4(path: Path, limit: int, work_dir: Path) -> Path | None:
    """Re-encode an MP4 (H.264, yuv420p, faststart: what Discord plays inline) to at most
    `limit` bytes: each try is smaller and has a lower bitrate cap than the one before.
    None where it cannot: a bot image without ffmpeg (the render extra), or a broken file."""
    try:
        import imageio_ffmpeg
    except ImportError:
        log.warning("%s is over the upload limit; without imageio-ffmpeg it stays unsent", path)
        return None
    try:
        return _reencode(imageio_ffmpeg.get_ffmpeg_exe(), path, limit, work_dir)
    except (OSError, RuntimeError, subprocess.SubprocessError, KeyError, StopIteration) as error:
        log.warning("%s could not be re-encoded smaller: %s", path, error)
        return None


def _reencode(ffmpeg: str, path: Path, limit: int, work_dir: Path) -> Path | None:
    width, height, seconds = video_facts(path)
    out = work_dir / path.name
    work_dir.mkdir(parents=True, exist_ok=True)
    for rung, w, h in rungs(width, height):
        # the shared ladder's cap, for the room left; at least 8 kbit/s for a 0-second file
        kbits = max(8, max_bitrate(limit, max(seconds, 0.1), rung) // 1000)
        command = [
            ffmpeg,
            *("-y", "-loglevel", "error", "-i", str(path), "-an"),
            *("-vf", f"scale={w}:{h}", "-c:v", "libx264", "-preset", "superfast"),
            *("-crf", "28", "-maxrate", f"{kbits}k", "-bufsize", f"{kbits}k"),
            *INLINE_H264,
            str(out),
        ]
        subprocess.run(command, check=True, capture_output=True, timeout=300)
        if out.stat().st_size <= limit:
            return out
    out.unlink(missing_ok=True)
    return None
