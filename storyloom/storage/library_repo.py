"""The character library in SQL: the core's `LibraryRepository` over a unit of work's session."""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import delete, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storyloom.storage.tables import CharacterRow, LibraryCharacterRow
from storyloom.storage.unit_of_work import session_of
from storyloom.story.library_ports import LibraryCharacter
from storyloom.story.limits import name_key
from storyloom.story.ports import UnitOfWork


def _entry(row: LibraryCharacterRow) -> LibraryCharacter:
    return LibraryCharacter(
        row.id, row.workspace_id, row.name, row.description, row.style, row.seed,
        tuple(json.loads(row.identity_prompts)), row.locked, row.reference, row.sheet,
        row.saved_by, row.saved_by_name, row.saved_at,
    )  # fmt: skip


class SqlLibrary:
    """Implements `LibraryRepository`."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, workspace_id: str, name: str) -> LibraryCharacter | None:
        """The server's entry with this name (case-insensitive)."""
        query = select(LibraryCharacterRow).where(
            LibraryCharacterRow.workspace_id == workspace_id,
            LibraryCharacterRow.name_key == name_key(name),
        )
        row = (await self._session.execute(query)).scalar_one_or_none()
        return None if row is None else _entry(row)

    async def list(self, workspace_id: str) -> Sequence[LibraryCharacter]:
        """The server's entries, by name."""
        query = select(LibraryCharacterRow).where(LibraryCharacterRow.workspace_id == workspace_id)
        rows = await self._session.execute(query.order_by(LibraryCharacterRow.name_key))
        return [_entry(row) for row in rows.scalars()]

    async def put(self, entry: LibraryCharacter) -> LibraryCharacter:
        """Insert a new entry (id 0) or replace the one with its id."""
        row = (
            LibraryCharacterRow(workspace_id=entry.workspace_id)
            if entry.id == 0
            else await self._session.get_one(LibraryCharacterRow, entry.id)
        )
        row.name, row.name_key = entry.name, name_key(entry.name)
        row.description = entry.description
        row.style, row.seed, row.locked = entry.style, entry.seed, entry.locked
        row.identity_prompts = json.dumps(list(entry.identity_prompts), ensure_ascii=False)
        row.reference, row.sheet = entry.reference, entry.sheet
        row.saved_by, row.saved_by_name, row.saved_at = (
            entry.saved_by, entry.saved_by_name, entry.saved_at,
        )  # fmt: skip
        self._session.add(row)
        await self._session.flush()
        return _entry(row)

    async def delete(self, entry_id: int) -> None:
        """Remove an entry."""
        await self._session.execute(
            delete(LibraryCharacterRow).where(LibraryCharacterRow.id == entry_id)
        )

    async def set_reference(self, character_id: int, reference: str | None) -> None:
        """Set a story character's reference picture."""
        await self._session.execute(
            update(CharacterRow)
            .where(CharacterRow.id == character_id)
            .values(reference=reference)
            .execution_options(synchronize_session="fetch")
        )

    async def file_in_use(self, name: str) -> bool:
        """Whether any entry or story character keeps this picture file."""
        in_library = exists().where(
            or_(LibraryCharacterRow.reference == name, LibraryCharacterRow.sheet == name)
        )
        in_story = exists().where(CharacterRow.reference == name)
        query = select(or_(in_library, in_story))
        return bool((await self._session.execute(query)).scalar())


def library(uow: UnitOfWork) -> SqlLibrary:
    """The character library of a SQL unit of work (the core's `Library.of`)."""
    return SqlLibrary(session_of(uow))
