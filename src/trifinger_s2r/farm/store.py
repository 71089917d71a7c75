"""The farm's job store: users with hashed tokens, jobs and their queue, robots; SQLAlchemy over SQLite or PostgreSQL.

Every state change is one conditional UPDATE (`... WHERE id = :id AND status = :expected`), so concurrent servers,
workers and submissions never assign a job twice or lose one, on either database.

Job life: queued -> assigned (a randomly chosen free healthy robot, with a lease) -> running (the robot started it
and heartbeats, each beat extending the lease) -> succeeded / failed. A lease that runs out (the worker died) puts the
job back in the queue, up to `max_attempts` runs; then it fails with the reason. A robot that reports itself
unhealthy, or a worker that is being stopped, hands its job back (`release`: queued again, the attempt not counted).
Every change of a job is also written to `job_events` (who, when, why), in the same transaction.
"""

from __future__ import annotations

import datetime
import json
import random
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import create_engine, event, func, inspect, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from trifinger_s2r.farm.records import (  # the store's callers also name these from here
    ACTIVE_STATUSES,
    ASSIGNED,
    FAILED,
    FINISHED_STATUSES,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    Base,
    Job,
    JobEventRow,
    JobRow,
    RobotRow,
    SchedulerLockRow,
    User,
    UserRow,
    hash_token,
    iso_utc,
    utcnow,
)


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
        self._migrate()
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._ensure_lock_row()

    def _migrate(self) -> None:
        """Bring a database made by an older version up to date: columns added since (nullable, so old rows stay
        valid) and their indexes. Tables added since are made by create_all."""
        if "request_id" not in {c["name"] for c in inspect(self.engine).get_columns("jobs")}:
            try:
                with self.engine.begin() as connection:
                    connection.execute(text("ALTER TABLE jobs ADD COLUMN request_id VARCHAR(64)"))
            except (OperationalError, ProgrammingError):  # another process added it first
                if "request_id" not in {c["name"] for c in inspect(self.engine).get_columns("jobs")}:
                    raise
        for index in JobRow.__table__.indexes:
            try:
                index.create(self.engine, checkfirst=True)
            except (OperationalError, ProgrammingError):  # made concurrently by another process
                pass

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
        while token.startswith("-"):  # `--token -x...` would read as a missing value on every command line
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

    def submit(self, user: User, settings: dict, job_id: str | None = None, request_id: str | None = None) -> Job:
        """Queue a job. With a request_id the user used before, the job of that request comes back instead (the
        client retried a submission whose answer it lost): compare `job.id` with the id asked for."""
        try:
            with self._session() as s:
                row = JobRow(id=job_id or uuid.uuid4().hex, user_id=user.id, status=QUEUED,
                             settings_json=json.dumps(settings), request_id=request_id)
                s.add(row)
                s.flush()
                s.add(JobEventRow(job_id=row.id, event="submitted", detail=f"by {user.name}"))
        except IntegrityError:
            existing = self.job_for_request(user, request_id) if request_id else None
            if existing is None:
                raise
            return existing
        return Job.from_row(row)

    def job_for_request(self, user: User, request_id: str) -> Job | None:
        with self._session() as s:
            row = s.scalar(select(JobRow).where(JobRow.user_id == user.id, JobRow.request_id == request_id))
            return Job.from_row(row) if row else None

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

    def events(self, job_id: str) -> list[dict]:
        """The job's history, oldest first: {"at", "event", "robot", "detail"}."""
        with self._session() as s:
            rows = s.scalars(select(JobEventRow).where(JobEventRow.job_id == job_id).order_by(JobEventRow.id))
            return [{"at": iso_utc(r.at), "event": r.event, "robot": r.robot, "detail": r.detail} for r in rows]

    def all_events(self) -> list[dict]:
        """Every job's history (for audits such as the soak test): {"job_id", "at", "event", "robot", "detail"}."""
        with self._session() as s:
            return [{"job_id": r.job_id, "at": iso_utc(r.at), "event": r.event, "robot": r.robot, "detail": r.detail}
                    for r in s.scalars(select(JobEventRow).order_by(JobEventRow.id))]

    def record_event(self, job_id: str, event_name: str, robot: str | None = None, detail: str = "") -> None:
        with self._session() as s:
            s.add(JobEventRow(job_id=job_id, event=event_name, robot=robot, detail=detail[:2000]))

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

    def robot_alive(self, name: str) -> None:
        """A heartbeat from the robot's running job: it is online (its health is reported with the next poll)."""
        with self._session() as s:
            s.execute(update(RobotRow).where(RobotRow.name == name).values(last_seen_at=utcnow()))

    def robots(self) -> list[dict]:
        """Every robot the farm has heard from: name, status ('free', 'busy', 'unhealthy' or 'offline': not heard
        from for robot_timeout_s), healthy, health_message (the reason when unhealthy), online, busy, job_id (its
        active job), last_seen_at, seen_s_ago, jobs_run (finished jobs whose last run was on it), jobs_succeeded,
        jobs_failed, info (what its worker reports: platform, calibration, pid, host)."""
        now = utcnow()
        with self._session() as s:
            active = dict(s.execute(select(JobRow.robot, JobRow.id).where(JobRow.status.in_(ACTIVE_STATUSES))).all())
            counts: dict[tuple[str, str], int] = {
                (robot, status): n for robot, status, n in s.execute(
                    select(JobRow.robot, JobRow.status, func.count()).where(JobRow.status.in_(FINISHED_STATUSES))
                    .group_by(JobRow.robot, JobRow.status)).all()}
            out = []
            for r in s.scalars(select(RobotRow).order_by(RobotRow.name)):
                seen_ago = (now - r.last_seen_at).total_seconds()
                online = seen_ago <= self.policy.robot_timeout_s
                busy = r.name in active
                status = "offline" if not online else "unhealthy" if not r.healthy else "busy" if busy else "free"
                succeeded, failed = counts.get((r.name, SUCCEEDED), 0), counts.get((r.name, FAILED), 0)
                out.append({"name": r.name, "status": status, "healthy": r.healthy,
                            "health_message": r.health_message, "online": online, "busy": busy,
                            "job_id": active.get(r.name), "last_seen_at": iso_utc(r.last_seen_at),
                            "seen_s_ago": round(seen_ago, 1), "jobs_run": succeeded + failed,
                            "jobs_succeeded": succeeded, "jobs_failed": failed, "info": json.loads(r.info_json)})
            return out

    def waiting(self, jobs: list[Job]) -> dict[str, dict]:
        """Why each queued job among `jobs` waits: {job_id: {"waiting_reason", "queue_position"}} (position 1 is
        next). The reason names the robots when no healthy one is online, so a job is never silently stuck."""
        queued = [j for j in jobs if j.status == QUEUED]
        if not queued:
            return {}
        robots = self.robots()
        with self._session() as s:
            order = list(s.scalars(select(JobRow.id).where(JobRow.status == QUEUED).order_by(JobRow.created_at)))
            active_by_user = dict(s.execute(select(JobRow.user_id, JobRow.id)
                                            .where(JobRow.status.in_(ACTIVE_STATUSES))).all())
        available = [r for r in robots if r["online"] and r["healthy"]]
        if not robots:
            common = "no healthy robot: no robot has connected to the farm yet"
        elif not available:
            common = "no healthy robot: " + "; ".join(
                f"{r['name']} unhealthy ({r['health_message'] or 'no reason given'})" if r["online"]
                else f"{r['name']} offline (last heard from {r['seen_s_ago']:.0f} s ago)" for r in robots)
        else:
            common = None
        out = {}
        for job in queued:
            position = order.index(job.id) + 1 if job.id in order else None
            if common is not None:
                reason = common
            elif self.policy.one_active_job_per_user and job.user_id in active_by_user:
                reason = (f"waiting for your job {active_by_user[job.user_id][:12]} to finish "
                          "(one active job per user)")
            elif all(r["busy"] for r in available):
                reason = (f"all {len(available)} healthy robot(s) are busy; "
                          f"{(position or 1) - 1} queued job(s) ahead of it")
            else:
                reason = "a healthy robot is free: assigned at its next poll"
            out[job.id] = {"waiting_reason": reason, "queue_position": position}
        return out

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
                s.add(JobEventRow(job_id=row.id, at=now, event="assigned", robot=robot,
                                  detail=f"attempt {row.attempts}"))
                assigned += 1
        return assigned

    def assigned_job(self, robot: str) -> Job | None:
        """The job assigned to (or running on) this robot, if any."""
        with self._session() as s:
            row = s.scalar(select(JobRow).where(JobRow.robot == robot, JobRow.status.in_(ACTIVE_STATUSES)))
            return Job.from_row(row) if row else None

    def start(self, job_id: str, robot: str, run_id: str = "") -> bool:
        """The robot starts the job assigned to it, or starts over the job it was running (its worker restarted
        after a crash: 'resumed'); False when the job is not this robot's."""
        if self._transition(job_id, ASSIGNED, owner=robot, event=("started", robot, run_id), status=RUNNING,
                            started_at=utcnow(), lease_expires_at=self._lease_end()):
            return True
        return self._transition(job_id, RUNNING, owner=robot, event=("resumed", robot, run_id),
                                started_at=utcnow(), lease_expires_at=self._lease_end())

    def heartbeat(self, job_id: str, robot: str) -> bool:
        """Extend the lease; False when the job is no longer this robot's (the worker must stop)."""
        return self._transition(job_id, RUNNING, owner=robot, lease_expires_at=self._lease_end())

    def finish(self, job_id: str, robot: str, result: dict, run_id: str = "") -> bool:
        return self._transition(job_id, RUNNING, owner=robot, event=("succeeded", robot, run_id), status=SUCCEEDED,
                                finished_at=utcnow(), result_json=json.dumps(result), lease_expires_at=None)

    def succeeded_run(self, job_id: str) -> str | None:
        """The run id its robot gave the run that finished the job (None if it has not succeeded)."""
        with self._session() as s:
            return s.scalar(select(JobEventRow.detail).where(JobEventRow.job_id == job_id,
                                                             JobEventRow.event == "succeeded"))

    def fail(self, job_id: str, reason: str, robot: str | None = None, from_status: str = RUNNING,
             lease_before: datetime.datetime | None = None) -> bool:
        return self._transition(job_id, from_status, owner=robot, lease_before=lease_before,
                                event=("failed", robot, reason), status=FAILED, finished_at=utcnow(),
                                error=reason[:2000], lease_expires_at=None)

    def release(self, job_id: str, robot: str, reason: str) -> bool:
        """The robot hands its assigned or running job back (it is unhealthy, or its worker is stopping): queued
        again at once, and the attempt does not count."""
        for status in ACTIVE_STATUSES:
            if self._transition(job_id, status, owner=robot, event=("released", robot, reason), status=QUEUED,
                                robot=None, lease_expires_at=None, error=f"released by {robot}: {reason}"[:2000],
                                attempts=JobRow.attempts - 1):  # >= 1 while assigned or running
                return True
        return False

    def release_robot(self, robot: str, reason: str) -> int:
        """Hand back every job of this robot (see release); how many."""
        with self._session() as s:
            ids = list(s.scalars(select(JobRow.id).where(JobRow.robot == robot,
                                                         JobRow.status.in_(ACTIVE_STATUSES))))
        return sum(self.release(job_id, robot, reason) for job_id in ids)

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
                changed += self._transition(job_id, status, lease_before=now,
                                            event=("requeued", robot, "the lease lapsed: no heartbeat"),
                                            status=QUEUED, robot=None, lease_expires_at=None,
                                            error=f"robot {robot} stopped responding; re-queued")
        return changed

    def grace_leases(self) -> int:
        """A server (re)starting gives every active job a full lease: its workers could not heartbeat while no
        server answered, and their jobs should not be taken from them for that. How many were extended."""
        end = self._lease_end()
        with self._session() as s:
            return s.execute(update(JobRow).where(JobRow.status.in_(ACTIVE_STATUSES), JobRow.lease_expires_at < end)
                             .values(lease_expires_at=end)).rowcount

    def _lease_end(self) -> datetime.datetime:
        return utcnow() + datetime.timedelta(seconds=self.policy.lease_s)

    def _transition(self, job_id: str, expected_status: str, owner: str | None = None,
                    lease_before: datetime.datetime | None = None,
                    event: tuple[str, str | None, str] | None = None, **values) -> bool:
        """One atomic conditional update (status, and the owning robot or a lapsed lease where given); True when
        this caller made the change. `event` (name, robot, detail) goes into the job's history in the same
        transaction."""
        condition = [JobRow.id == job_id, JobRow.status == expected_status]
        if owner is not None:
            condition.append(JobRow.robot == owner)
        if lease_before is not None:
            condition.append(JobRow.lease_expires_at < lease_before)
        with self._session() as s:
            changed = s.execute(update(JobRow).where(*condition).values(**values)).rowcount == 1
            if changed and event is not None:
                name, robot, detail = event
                s.add(JobEventRow(job_id=job_id, event=name, robot=robot, detail=(detail or "")[:2000]))
            return changed
