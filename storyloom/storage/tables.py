"""The tables, as typed SQLAlchemy models. Rows never leave `storage/`: repositories turn
them into the core's frozen values."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.expression import false
from sqlalchemy.types import TypeDecorator

# Named constraints let Alembic's SQLite batch mode find and alter them later.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Chat ids: Discord snowflakes, Slack ids and thread timestamps all fit in 64 characters.
ChatId = String(64)


class Timestamp(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite would hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        return None if value is None else value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class StoryRow(Base):
    __tablename__ = "stories"
    __table_args__ = (UniqueConstraint("workspace_id", "channel_id", "thread_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ChatId)
    channel_id: Mapped[str] = mapped_column(ChatId)
    thread_id: Mapped[str] = mapped_column(ChatId)
    title: Mapped[str] = mapped_column(String(200))
    style: Mapped[str] = mapped_column(String(64))
    seed: Mapped[int] = mapped_column(BigInteger)
    owner_id: Mapped[str] = mapped_column(ChatId)
    owner_name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(Timestamp())


class BeatRow(Base):
    __tablename__ = "beats"
    # The unique pair is the last line of defence against duplicate positions.
    __table_args__ = (
        UniqueConstraint("story_id", "position"),
        Index("ix_beats_story_id_author_id", "story_id", "author_id"),
        Index("ix_beats_story_id_request_key", "story_id", "request_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    author_id: Mapped[str] = mapped_column(ChatId)
    author_name: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(Timestamp())
    edited_at: Mapped[datetime | None] = mapped_column(Timestamp(), nullable=True)
    # how many times the beat's panel was re-rolled: part of its seed, kept by later renders
    variant: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # the chat platform's id of the request that added it: a redelivered event adds it once
    request_key: Mapped[str | None] = mapped_column(String(100), nullable=True)


class CharacterRow(Base):
    __tablename__ = "characters"
    __table_args__ = (UniqueConstraint("story_id", "name_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    name_key: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text)
    lock_state: Mapped[str] = mapped_column(String(16))
    seed: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(ChatId)
    created_at: Mapped[datetime] = mapped_column(Timestamp())
    updated_at: Mapped[datetime] = mapped_column(Timestamp())
    # the clean reference picture's file name (sha256 + .png), if any (0012)
    reference: Mapped[str | None] = mapped_column(String(80), nullable=True)


class RenderJobRow(Base):
    __tablename__ = "render_jobs"
    __table_args__ = (
        Index("ix_render_jobs_status", "status"),
        # a retried interaction or a double click finds the job it already asked for (the
        # story's row lock, held while a job is added, keeps two from being added at once)
        Index("ix_render_jobs_story_id_request_key", "story_id", "request_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    first_position: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_position: Mapped[int | None] = mapped_column(Integer, nullable=True)
    character_id: Mapped[int | None] = mapped_column(
        ForeignKey("characters.id", ondelete="SET NULL"), nullable=True
    )
    requested_by: Mapped[str] = mapped_column(ChatId)
    requested_by_name: Mapped[str] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp())
    # for a running job, the worker's last heartbeat
    updated_at: Mapped[datetime] = mapped_column(Timestamp())
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    posted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # a running job's progress, written by its worker (throttled) for the chat side to show
    progress_percent: Mapped[int | None] = mapped_column(Integer, nullable=True)
    progress_text: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # a small JPEG of the render so far (jobs/progress.py), replaced now and then
    progress_preview: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # where the chat side shows this job's status message (the adapter's own format), so
    # a restarted bot can still edit it
    status_ref: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # the result's file names, main result first (JSON list), written with `done`
    result_files: Mapped[str | None] = mapped_column(Text, nullable=True)
    # the chat platform's id of the request that asked for it (idempotency key)
    request_key: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # what the worker does with a panel the image check flags (block, blur, off), fixed
    # when the job is asked for: the server's level and the channel's age restriction
    safety: Mapped[str] = mapped_column(String(8), default="block", server_default="block")
    # the beats it draws as they were when it was asked for (JSON list; see beat_snapshot)
    beats: Mapped[str | None] = mapped_column(Text, nullable=True)


class JobArtifactRow(Base):
    """A finished job's files, for a chat side on another machine than the worker (the
    distributed mode); deleted once the result is posted."""

    __tablename__ = "job_artifacts"
    __table_args__ = (UniqueConstraint("job_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("render_jobs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    data: Mapped[bytes] = mapped_column(LargeBinary)


class LibraryCharacterRow(Base):
    """A server's saved character: its identity spec, and the files it keeps (0012)."""

    __tablename__ = "library_characters"
    __table_args__ = (UniqueConstraint("workspace_id", "name_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ChatId)
    name: Mapped[str] = mapped_column(String(64))
    name_key: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text)
    style: Mapped[str] = mapped_column(String(64))
    seed: Mapped[int] = mapped_column(BigInteger)
    identity_prompts: Mapped[str] = mapped_column(Text)  # a JSON list of texts
    locked: Mapped[bool] = mapped_column(Boolean)
    reference: Mapped[str | None] = mapped_column(String(80), nullable=True)
    sheet: Mapped[str | None] = mapped_column(String(80), nullable=True)
    saved_by: Mapped[str] = mapped_column(ChatId)
    saved_by_name: Mapped[str] = mapped_column(String(200))
    saved_at: Mapped[datetime] = mapped_column(Timestamp())


class ShareLinkRow(Base):
    """A link to a story's reader page. Only the SHA-256 of its token is kept: a leaked
    database does not hand out working links."""

    __tablename__ = "share_links"
    __table_args__ = (
        UniqueConstraint("token_hash"),
        # a moderator lists the server's links
        Index("ix_share_links_workspace_id", "workspace_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"), index=True)
    workspace_id: Mapped[str] = mapped_column(ChatId)
    token_hash: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(ChatId)
    created_by_name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(Timestamp())
    revoked_at: Mapped[datetime | None] = mapped_column(Timestamp(), nullable=True)


class ServerSettingsRow(Base):
    """A server's changed settings (JSON object of story/server.ServerSettings fields);
    no row: all defaults."""

    __tablename__ = "server_settings"

    workspace_id: Mapped[str] = mapped_column(ChatId, primary_key=True)
    changes: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(ChatId)
    updated_at: Mapped[datetime] = mapped_column(Timestamp())


class AuditEntryRow(Base):
    """One audit entry. No foreign keys: entries outlive their stories and jobs."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_entries_workspace_id_id", "workspace_id", "id"),
        Index("ix_audit_entries_story_id", "story_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ChatId)
    at: Mapped[datetime] = mapped_column(Timestamp())
    action: Mapped[str] = mapped_column(String(32))
    actor_id: Mapped[str] = mapped_column(ChatId)
    actor_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    story_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    job_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    target: Mapped[str | None] = mapped_column(String(100), nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)


class OwedMessageRow(Base):
    """A job's outcome that the chat side owes its members (the outbox): written in the
    transaction that marks the job reported, deleted with the job, delivered until done."""

    __tablename__ = "owed_messages"
    __table_args__ = (
        UniqueConstraint("job_id"),  # one outcome per job, whatever the number of watchers
        Index("ix_owed_messages_state_next_try_at", "state", "next_try_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("render_jobs.id", ondelete="CASCADE"))
    workspace_id: Mapped[str] = mapped_column(ChatId)
    # messages of one lane (a workspace's channel) go out in order; lanes never wait on
    # each other
    lane: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16))  # pending, delivered, impossible
    # the delivery's steps already made, and those begun (comma-separated names): a step
    # begun but not made may have reached the platform before a crash
    done: Mapped[str] = mapped_column(String(200), default="", server_default="")
    started: Mapped[str] = mapped_column(String(200), default="", server_default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_try_at: Mapped[datetime] = mapped_column(Timestamp())
    last_error: Mapped[str | None] = mapped_column(String(300), nullable=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp())
    delivered_at: Mapped[datetime | None] = mapped_column(Timestamp(), nullable=True)
