"""The character library on each backend (SQLite and PostgreSQL), with the real character
folder, picture checks and sheet reader: saved characters keep their identity in other
stories, only their saver or a moderator changes them, files move between servers, bad
files change nothing, and kept pictures are clean and deleted once nothing uses them."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from storyloom.bot.library_setup import character_library
from storyloom.config import Settings
from storyloom.generation.safety import Finding
from storyloom.jobs.artifacts import character_specs
from storyloom.jobs.result_files import job_folder
from storyloom.storage import SqlDatabase
from storyloom.story import character_file, library, service
from storyloom.story.errors import Forbidden, InvalidInput, LimitExceeded, StoryError
from storyloom.story.library_ports import Library
from storyloom.story.model import Actor, DeletedStory, JobStatus, LockState
from storyloom.story.service import Deps

ANN = Actor("g1", "c", "t1", "ann", "Ann")
BO = Actor("g1", "c", "t2", "bo", "Bo")
MOD = Actor("g1", "c", "t3", "mo", "Mo", is_moderator=True)
ELSEWHERE = Actor("g2", "c", "t1", "cy", "Cy")  # another server


def photo_with_exif(color: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    image = Image.new("RGB", (96, 64), color)
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {1: "N"}  # GPS IFD
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


class Detector:
    """Flags the pictures whose top-left pixel is pure green (a stand-in for a nude)."""

    def __call__(self, image: Image.Image) -> Sequence[Finding]:
        flagged = image.convert("RGB").getpixel((0, 0)) == (0, 255, 0)
        return [Finding("FEMALE_BREAST_EXPOSED", 0.9)] if flagged else []


@pytest.fixture
def lib(db: SqlDatabase, tmp_path: Path) -> Library:
    settings = Settings(character_dir=tmp_path / "characters", output_dir=tmp_path / "out")
    return character_library(settings, db, detector=Detector)


def kept(tmp_path: Path) -> set[str]:
    folder = tmp_path / "characters"
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


async def locked_character(
    deps: Deps, actor: Actor, tmp_path: Path, description: str = "a girl with short red hair",
    color: tuple[int, int, int] = (10, 120, 200),
) -> None:  # fmt: skip
    """A story in the actor's thread whose Mira has a drawn, locked sheet (the job's file
    written where the worker writes it)."""
    name = "Mira"
    await service.new_story(deps, actor, "One")
    await service.cast_character(deps, actor, name, description)
    result = await service.lock_look(deps, actor, name)
    assert result.job is not None
    folder = job_folder((tmp_path / "out").resolve(), result.job.id)
    folder.mkdir(parents=True)
    Image.new("RGB", (128, 64), color).save(folder / "sheet-mira.png")
    async with deps.db.writing() as uow:
        await uow.jobs.set_status(
            result.job.id, JobStatus.DONE, deps.clock(), files=["sheet-mira.png"]
        )
        await uow.characters.update(
            result.character.id, deps.clock(), lock_state=LockState.SHEET_RENDERED
        )
    await service.lock_look(deps, actor, name)


async def cast_of(deps: Deps, actor: Actor):  # type: ignore[no-untyped-def]
    return (await service.status(deps, actor)).characters


async def test_a_saved_character_keeps_its_locked_identity_in_another_story(
    deps: Deps, lib: Library, tmp_path: Path
) -> None:
    await locked_character(deps, ANN, tmp_path)
    entry = await library.save(deps, lib, ANN, "mira")
    assert entry.locked and entry.sheet is not None and entry.name == "Mira"
    (original,) = await cast_of(deps, ANN)

    await service.new_story(deps, BO, "Two")  # same server, same style
    result = await library.cast(deps, lib, BO, "MIRA")
    assert result.kept_lock and result.entry is not None
    (reused,) = await cast_of(deps, BO)
    assert reused.lock_state is LockState.LOCKED
    # the renderer's view, and so the identity spec and its store key, is the same
    assert character_specs([reused]) == character_specs([original])
    assert (await service.status(deps, BO)).jobs == ()  # no sheet, no lock pass queued

    await service.new_story(deps, MOD, "Three", style="manga")  # another style: draw anew
    result = await library.cast(deps, lib, MOD, "Mira")
    assert not result.kept_lock and result.character.lock_state is LockState.DRAFT

    listed = await library.listing(deps, lib, BO)
    assert [e.name for e in listed] == ["Mira"]
    shown, sheet = await library.show(deps, lib, BO, "Mira")
    assert shown == entry and sheet is not None and Image.open(io.BytesIO(sheet)).size == (128, 64)
    assert await library.listing(deps, lib, ELSEWHERE) == ()  # one library per server


async def test_only_the_saver_or_a_moderator_replaces_or_deletes_an_entry(
    deps: Deps, lib: Library, tmp_path: Path
) -> None:
    await locked_character(deps, ANN, tmp_path)
    await library.save(deps, lib, ANN, "Mira")
    await locked_character(deps, BO, tmp_path, "a tall knight", (200, 10, 10))  # Bo's own Mira
    before = kept(tmp_path)
    with pytest.raises(Forbidden, match="saved by Ann; only they or a moderator"):
        await library.save(deps, lib, BO, "Mira")
    assert kept(tmp_path) == before  # the refused save keeps no sheet
    with pytest.raises(Forbidden, match="saved by Ann"):
        await library.delete(deps, lib, BO, "Mira")
    (entry,) = await library.listing(deps, lib, BO)
    assert entry.description == "a girl with short red hair"  # unchanged
    await library.save(deps, lib, ANN, "Mira")  # the saver may replace it
    await library.delete(deps, lib, MOD, "Mira")  # a moderator may delete it
    assert await library.listing(deps, lib, ANN) == ()
    async with deps.db.reading() as uow:
        entries = await uow.audit.recent("g1", 100)
    trail = [(e.action.value, e.actor_name, e.target) for e in entries]
    assert [t for t in trail if t[0].startswith("library.")] == [  # newest first; the
        ("library.deleted", "Mo", "Mira"),  # refusals changed nothing, so left no entry
        ("library.saved", "Ann", "Mira"),
        ("library.saved", "Ann", "Mira"),
    ]
    assert kept(tmp_path) == set()  # its sheet went with it


async def test_export_then_import_moves_a_character_to_another_server(
    deps: Deps, lib: Library, tmp_path: Path
) -> None:
    await locked_character(deps, ANN, tmp_path)
    await library.cast(deps, lib, ANN, "Mira", "a girl with short red hair", photo_with_exif())
    await service.lock_look(deps, ANN, "Mira")  # a sheet job for the new look
    entry = await library.save(deps, lib, ANN, "Mira")
    assert entry.reference is not None
    name, data = await library.export(deps, lib, ANN, "Mira")
    assert name == "Mira.storyloom-character"

    imported = await library.import_character(deps, lib, ELSEWHERE, data)
    assert imported.workspace_id == "g2" and imported.saved_by == "cy"
    same = ("name", "description", "style", "seed", "identity_prompts", "reference")
    assert {k: getattr(imported, k) for k in same} == {k: getattr(entry, k) for k in same}
    await service.new_story(deps, ELSEWHERE, "Elsewhere")
    await library.cast(deps, lib, ELSEWHERE, "Mira")
    (there,) = await cast_of(deps, ELSEWHERE)
    (here,) = await cast_of(deps, ANN)
    folder = tmp_path / "characters"
    assert character_specs([there], folder) == character_specs([here], folder)  # one identity
    with pytest.raises(StoryError, match="already has Mira; delete it first"):
        await library.import_character(deps, lib, ELSEWHERE, data)


def zipped(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def spec(**changes: object) -> bytes:
    base = {"format": "storyloom-character", "version": 1, "name": "Mira",
            "description": "a girl", "style": "comic", "seed": 7}  # fmt: skip
    return json.dumps({**base, **changes}).encode()


BAD_FILES = [
    (b"just some text", InvalidInput, "not a storyloom character file"),
    (b"\0" * (character_file.MAX_FILE_BYTES + 1), LimitExceeded, "the limit is 20 MiB"),
    (zipped({"character.json": spec(version=2)}), InvalidInput, "version 2; this storyloom"),
    (zipped({"character.json": b"{not json"}), InvalidInput, "is not valid JSON"),
    (zipped({"character.json": spec(seed="x")}), InvalidInput, "'seed' is missing"),
    (zipped({"character.json": spec(style="oil")}), InvalidInput, "style 'oil' is not one"),
    (zipped({"character.json": spec(), "evil.sh": b"rm"}), InvalidInput, "not a storyloom"),
    (
        zipped({"character.json": spec(), "sheet.png": b"\0" * 10}),
        InvalidInput,
        "sheet.png is not a PNG",
    ),
    (
        # a bomb: 17 MiB of zeros compress to a few KiB; refused before it is unpacked
        zipped({"character.json": spec(), "sheet.png": b"\0" * (17 * 2**20)}),
        LimitExceeded,
        "sheet.png is larger than allowed",
    ),
]


@pytest.mark.parametrize(("data", "error", "message"), BAD_FILES)
async def test_a_bad_character_file_is_refused_in_one_sentence_and_changes_nothing(
    deps: Deps, lib: Library, tmp_path: Path, data: bytes, error: type, message: str
) -> None:
    with pytest.raises(error, match=message) as raised:
        await library.import_character(deps, lib, ANN, data)
    assert raised.value.message.count(". ") == 0  # one sentence
    assert await library.listing(deps, lib, ANN) == ()
    assert kept(tmp_path) == set()


async def test_a_reference_is_kept_clean_and_deleted_when_nothing_uses_it(
    deps: Deps, lib: Library, tmp_path: Path
) -> None:
    await service.new_story(deps, ANN, "One")
    result = await library.cast(deps, lib, ANN, "Mira", "a girl", photo_with_exif())
    reference = result.character.reference
    assert reference is not None and kept(tmp_path) == {reference}
    stored = Image.open(tmp_path / "characters" / reference)
    assert stored.format == "PNG" and not stored.getexif() and not stored.info.get("exif")
    (mira,) = await cast_of(deps, ANN)
    spec_of = character_specs([mira], tmp_path / "characters")["Mira"]
    assert spec_of.reference == tmp_path / "characters" / reference  # the renderer's input
    # a character with a picture is another identity than the same one without
    folder = tmp_path / "characters"
    without = replace(mira, reference=None)
    assert character_specs([mira], folder) != character_specs([without], folder)

    await service.new_story(deps, BO, "Two")  # the same picture in another story: kept once
    await library.cast(deps, lib, BO, "Ada", "a pilot", photo_with_exif())
    story = await service.delete_story(deps, ANN)
    await library.forgetting(deps.db, lib, None)(DeletedStory(story, (), (mira,)))
    assert kept(tmp_path) == {reference}  # Ada still uses it
    await library.cast(deps, lib, BO, "Ada", "a pilot")  # described again, no picture
    assert kept(tmp_path) == set()


async def test_a_flagged_or_broken_picture_is_refused_and_nothing_is_kept(
    deps: Deps, lib: Library, tmp_path: Path
) -> None:
    await service.new_story(deps, ANN, "One")
    green = io.BytesIO()
    Image.new("RGB", (32, 32), (0, 255, 0)).save(green, "PNG")
    with pytest.raises(InvalidInput, match="refused by this server's image safety check"):
        await library.cast(deps, lib, ANN, "Mira", "a girl", green.getvalue())
    with pytest.raises(InvalidInput, match="must be a PNG, JPEG or WebP"):
        await library.cast(deps, lib, ANN, "Mira", "a girl", b"GIF89a not really")
    assert await cast_of(deps, ANN) == ()
    assert kept(tmp_path) == set()
    with pytest.raises(InvalidInput, match="Describe Zed"):
        await library.cast(deps, lib, ANN, "Zed")  # no description, not in the library


async def test_an_unlocked_character_is_saved_unlocked_and_cast_as_a_draft(
    deps: Deps, lib: Library
) -> None:
    await service.new_story(deps, ANN, "One")
    await service.cast_character(deps, ANN, "Mira", "a girl")
    entry = await library.save(deps, lib, ANN, "Mira")
    assert not entry.locked and entry.sheet is None
    await service.new_story(deps, BO, "Two")
    result = await library.cast(deps, lib, BO, "Mira")
    assert not result.kept_lock and result.character.lock_state is LockState.DRAFT
    assert (await service.status(deps, BO)).jobs == ()  # a sheet is drawn when asked for
