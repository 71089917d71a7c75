"""The farm's job store: users with hashed tokens, jobs and their queue, robots; SQLAlchemy over SQLite or PostgreSQL.

Every state change is one conditional UPDATE (`... WHERE id = :id AND status = :expected`), so concurrent servers,
workers and submissions never assign a job twice or lose one, on either database.

Job life: queued -> assigned (a randomly chosen free robot, with a lease) -> running (the robot started it and
heartbeats, each beat extending the lease) -> succeeded / failed. A lease that runs out (the worker died) puts the
job back in the queue, up to `max_attempts` runs; then it fails with the reason.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import random
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    create_engine,
    event,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

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
            **{k: _iso(getattr(self, k)) for k in ("created_at", "assigned_at", "started_at", "finished_at")},
        }
        if self.result is not None:
            out.update({k: self.result.get(k) for k in ("success_rate", "ci80_low", "ci80_high", "episodes",
                                                       "mean_position_error_m", "mean_orientation_error_rad")})
        return out


def _iso(value: datetime.datetime | None) -> str | None:
    return value.isoformat(timespec="milliseconds") + "Z" if value is not None else None


@dataclass(frozen=True)
class QueuePolicy:
    lease_s: float = 30.0
    """A worker that misses heartbeats this long loses its job (it goes back to the queue)."""
    robot_timeout_s: float = 15.0
    """A robot not heard from this long is not offered jobs."""
    max_attempts: int = 3
    """Runs of one job before it fails for good."""
    one_active_job_per_user: bool = True


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class JobStore:
    """All of the farm's persistent state, behind one narrow interface."""

    def __init__(self, url: str, policy: QueuePolicy | None = None, rng: random.Random | None = None) -> None:
        self.url, self.policy = url, policy or QueuePolicy()
        self.rng = rng or random.SystemRandom()
        is_sqlite = url.startswith("sqlite")
        self.engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30} if is_sqlite else {},
                                    pool_pre_ping=True)
        if is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        Base.metadata.create_all(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._ensure_lock_row()

    def _ensure_lock_row(self) -> None:
        try:
            with self._session() as s:
                if s.get(SchedulerLockRow, 1) is None:
                    s.add(SchedulerLockRow(id=1, passes=0))
        except IntegrityError:
            pass  # another process created it first

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    # --- users -----------------------------------------------------------------------------------

    def add_user(self, name: str, admin: bool = False) -> str:
        """Create a user; returns its API token (only its hash is stored)."""
        if not name or len(name) > 64:
            raise ValueError("a user name is 1-64 characters")
        token = secrets.token_urlsafe(32)
        with self._session() as s:
            if s.scalar(select(UserRow).where(UserRow.name == name)) is not None:
                raise ValueError(f"user {name!r} exists already")
            s.add(UserRow(name=name, token_hash=hash_token(token), is_admin=admin))
        return token

    def user_for_token(self, token: str | None) -> User | None:
        if not token:
            return None
        with self._session() as s:
            row = s.scalar(select(UserRow).where(UserRow.token_hash == hash_token(token)))
            return User(row.id, row.name, row.is_admin) if row else None

    # --- jobs ------------------------------------------------------------------------------------

    def submit(self, user: User, settings: dict, job_id: str | None = None) -> Job:
        with self._session() as s:
            row = JobRow(id=job_id or uuid.uuid4().hex, user_id=user.id, status=QUEUED,
                         settings_json=json.dumps(settings))
            s.add(row)
        return Job.from_row(row)

    def new_job_id(self) -> str:
        return uuid.uuid4().hex

    def job(self, job_id: str, user: User | None = None) -> Job | None:
        """The job, or None; with a user, None also when it is another user's (the API answers 404 alike)."""
        with self._session() as s:
            row = s.get(JobRow, job_id)
            if row is None or (user is not None and not user.is_admin and row.user_id != user.id):
                return None
            return Job.from_row(row)

    def jobs(self, user: User) -> list[Job]:
        with self._session() as s:
            rows = s.scalars(select(JobRow).where(JobRow.user_id == user.id).order_by(JobRow.created_at.desc()))
            return [Job.from_row(r) for r in rows]

    def all_jobs(self) -> list[Job]:
        with self._session() as s:
            return [Job.from_row(r) for r in s.scalars(select(JobRow).order_by(JobRow.created_at))]

    # --- robots and the queue --------------------------------------------------------------------

    def robot_seen(self, name: str, healthy: bool, message: str = "", info: dict | None = None) -> None:
        with self._session() as s:
            row = s.get(RobotRow, name)
            if row is None:
                row = RobotRow(name=name)
                s.add(row)
            row.healthy, row.health_message, row.last_seen_at = healthy, message, utcnow()
            if info is not None:
                row.info_json = json.dumps(info)

    def robots(self) -> list[dict]:
        with self._session() as s:
            return [{"name": r.name, "healthy": r.healthy, "health_message": r.health_message,
                     "info": json.loads(r.info_json), "last_seen_at": _iso(r.last_seen_at)}
                    for r in s.scalars(select(RobotRow).order_by(RobotRow.name))]

    def schedule(self) -> int:
        """Expire dead leases, then give queued jobs (oldest first) to randomly chosen free robots; returns how
        many were assigned. One pass at a time (the lock row), in one transaction."""
        self.expire_leases()
        now = utcnow()
        seen_after = now - datetime.timedelta(seconds=self.policy.robot_timeout_s)
        assigned = 0
        with self._session() as s:
            s.execute(update(SchedulerLockRow).where(SchedulerLockRow.id == 1)
                      .values(passes=SchedulerLockRow.passes + 1))
            busy = set(s.scalars(select(JobRow.robot).where(JobRow.status.in_(ACTIVE_STATUSES))))
            free = sorted(r.name for r in s.scalars(select(RobotRow).where(
                RobotRow.healthy.is_(True), RobotRow.last_seen_at >= seen_after)) if r.name not in busy)
            active_users = set(s.scalars(select(JobRow.user_id).where(JobRow.status.in_(ACTIVE_STATUSES))))
            for row in s.scalars(select(JobRow).where(JobRow.status == QUEUED).order_by(JobRow.created_at)):
                if not free:
                    break
                if self.policy.one_active_job_per_user and row.user_id in active_users:
                    continue
                robot = self.rng.choice(free)
                free.remove(robot)
                active_users.add(row.user_id)
                row.status, row.robot, row.assigned_at = ASSIGNED, robot, now
                row.lease_expires_at, row.attempts = self._lease_end(), row.attempts + 1
                assigned += 1
        return assigned

    def assigned_job(self, robot: str) -> Job | None:
        """The job assigned to (or running on) this robot, if any."""
        with self._session() as s:
            row = s.scalar(select(JobRow).where(JobRow.robot == robot, JobRow.status.in_(ACTIVE_STATUSES)))
            return Job.from_row(row) if row else None

    def start(self, job_id: str, robot: str) -> bool:
        return self._transition(job_id, ASSIGNED, owner=robot, status=RUNNING, started_at=utcnow(),
                                lease_expires_at=self._lease_end())

    def heartbeat(self, job_id: str, robot: str) -> bool:
        """Extend the lease; False when the job is no longer this robot's (the worker must stop)."""
        return self._transition(job_id, RUNNING, owner=robot, lease_expires_at=self._lease_end())

    def finish(self, job_id: str, robot: str, result: dict) -> bool:
        return self._transition(job_id, RUNNING, owner=robot, status=SUCCEEDED, finished_at=utcnow(),
                                result_json=json.dumps(result), lease_expires_at=None)

    def fail(self, job_id: str, reason: str, robot: str | None = None, from_status: str = RUNNING,
             lease_before: datetime.datetime | None = None) -> bool:
        return self._transition(job_id, from_status, owner=robot, lease_before=lease_before, status=FAILED,
                                finished_at=utcnow(), error=reason[:2000], lease_expires_at=None)

    def expire_leases(self) -> int:
        """Jobs whose worker stopped beating go back to the queue (or fail after max_attempts)."""
        now = utcnow()
        with self._session() as s:
            expired = s.execute(select(JobRow.id, JobRow.status, JobRow.attempts, JobRow.robot).where(
                JobRow.status.in_(ACTIVE_STATUSES), JobRow.lease_expires_at < now)).all()
        changed = 0
        for job_id, status, attempts, robot in expired:
            if attempts >= self.policy.max_attempts:
                changed += self.fail(job_id, f"robot {robot} stopped responding; gave up after {attempts} attempts",
                                     from_status=status, lease_before=now)
            else:
                changed += self._transition(job_id, status, lease_before=now, status=QUEUED, robot=None,
                                            lease_expires_at=None, error=f"robot {robot} stopped responding; re-queued")
        return changed

    def _lease_end(self) -> datetime.datetime:
        return utcnow() + datetime.timedelta(seconds=self.policy.lease_s)

    def _transition(self, job_id: str, expected_status: str, owner: str | None = None,
                    lease_before: datetime.datetime | None = None, **values) -> bool:
        """One atomic conditional update (status, and the owning robot or a lapsed lease where given); True when
        this caller made the change."""
        condition = [JobRow.id == job_id, JobRow.status == expected_status]
        if owner is not None:
            condition.append(JobRow.robot == owner)
        if lease_before is not None:
            condition.append(JobRow.lease_expires_at < lease_before)
        with self._session() as s:
            return s.execute(update(JobRow).where(*condition).values(**values)).rowcount == 1
