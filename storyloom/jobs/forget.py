"""A deleted story's files: its jobs' result folders and its cast's identity stores.

The chat side removes the job folders in its own output folder (in both modes it keeps
the files it posts there); the identity stores live where the renderer runs, so they are
removed here only when this process renders (the embedded mode). A worker on another
machine keeps the stores of a deleted story until its store folder is cleaned.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from storyloom.jobs.result_files import job_folder
from storyloom.story.model import DeletedStory

if TYPE_CHECKING:
    from storyloom.generation.renderer import StoryRenderer

log = logging.getLogger(__name__)


def story_files(out_dir: Path, gone: DeletedStory, renderer: StoryRenderer | None) -> list[Path]:
    """The files and folders a deleted story leaves on this machine."""
    paths = [job_folder(out_dir, job_id) for job_id in gone.job_ids]
    if renderer is not None and renderer.store_dir is not None:
        from storyloom.generation.renderer import CharacterSpec

        for c in gone.cast:
            spec = renderer.identity_spec(CharacterSpec(c.name, c.description, c.seed),
                                          gone.story.style)  # fmt: skip
            paths.append(renderer.store_dir / f"{spec.key()}.safetensors")
    return [path for path in paths if path.exists()]


def forgetter(
    out_dir: Path, renderer: Callable[[], StoryRenderer | None]
) -> Callable[[DeletedStory], Awaitable[None]]:
    """`Deps.forget_files` for a chat process (`renderer`: this process's, if it has one)."""

    async def forget(gone: DeletedStory) -> None:
        def remove() -> int:
            paths = story_files(out_dir, gone, renderer())
            for path in paths:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
            return len(paths)

        removed = await asyncio.to_thread(remove)
        log.info("story %s deleted: removed %d files and folders", gone.story.id, removed)

    return forget
