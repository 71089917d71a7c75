"""The farm's records: job statuses, the database tables (SQLAlchemy rows) and the frozen views handed out of the store."""

from __future__ import annotations

import datetime
import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

QUEUED, ASSIGNED, RUNNING, SUCCEEDED, FAILED = "queued", "assigned", "running", "succeeded", "failed"
ACTIVE_STATUSES = (ASSIGNED, RUNNING)
FINISHED_STATUSES = (SUCCEEDED, FAILED)


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Base(DeclarativeBase):
    pass


class UserRow(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)


class JobRow(Base):
    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    settings_json: Mapped[str] = mapped_column(Text)
    robot: Mapped[str | None] = mapped_column(String(64), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_expires_at: Mapped[datetime.datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    assigned_at: Mapped[datetime.datetime | None] = mapped_column(DateTime, nullable=True)
    started_at: Mapped[datetime.datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[datetime.datetime | None] = mapped_column(DateTime, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    result_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """The client's idempotency key: a submission retried after a lost answer finds its job instead of a twin."""

    __table_args__ = (Index("ix_jobs_user_request", "user_id", "request_id", unique=True),)


class JobEventRow(Base):
    """A job's history: submitted, assigned, started, resumed, requeued, released, succeeded, failed,
    complete_rejected (a run reached its end but the job was no longer its: the run's results were dropped)."""

    __tablename__ = "job_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(32), index=True)
    at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    event: Mapped[str] = mapped_column(String(32))
    robot: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="")


class RobotRow(Base):
    __tablename__ = "robots"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    healthy: Mapped[bool] = mapped_column(Boolean, default=True)
    health_message: Mapped[str] = mapped_column(Text, default="")
    info_json: Mapped[str] = mapped_column(Text, default="{}")
    last_seen_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)


class SchedulerLockRow(Base):
    """One row; every scheduling pass updates it first, which serialises passes on SQLite and PostgreSQL alike."""

    __tablename__ = "scheduler_lock"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    passes: Mapped[int] = mapped_column(Integer, default=0)


@dataclass(frozen=True)
class User:
    id: int
    name: str
    is_admin: bool


@dataclass(frozen=True)
class Job:
    id: str
    user_id: int
    status: str
    settings: dict
    robot: str | None
    attempts: int
    created_at: datetime.datetime
    assigned_at: datetime.datetime | None
    started_at: datetime.datetime | None
    finished_at: datetime.datetime | None
    error: str | None
    result: dict | None

    @classmethod
    def from_row(cls, row: JobRow) -> Job:
        return cls(
            id=row.id, user_id=row.user_id, status=row.status, settings=json.loads(row.settings_json),
            robot=row.robot, attempts=row.attempts, created_at=row.created_at, assigned_at=row.assigned_at,
            started_at=row.started_at, finished_at=row.finished_at, error=row.error,
            result=json.loads(row.result_json) if row.result_json else None,
        )

    def as_dict(self) -> dict:
        out = {
            "job_id": self.id, "status": self.status, "settings": self.settings, "robot": self.robot,
            "attempts": self.attempts, "error": self.error,
            **{k: iso_utc(getattr(self, k)) for k in ("created_at", "assigned_at", "started_at", "finished_at")},
        }
        if self.result is not None:
            out.update({k: self.result.get(k) for k in ("success_rate", "ci80_low", "ci80_high", "episodes",
                                                       "mean_position_error_m", "mean_orientation_error_rad")})
        return out


def iso_utc(value: datetime.datetime | None) -> str | None:
    return value.isoformat(timespec="milliseconds") + "Z" if value is not None else None
