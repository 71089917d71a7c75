"""What every route of the farm server shares: its settings, the job store and data folder, who is asking (a Bearer
token, or the page's `s2r_token` cookie), the job views, and the one submission path of policies.

No `from __future__ import annotations` here: FastAPI must see the real dependency objects in the signatures.
"""

import hashlib
import hmac
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request, UploadFile
from fastapi.concurrency import run_in_threadpool

from trifinger_s2r.export.policy_bundle import METADATA_FILE, ONNX_FILE
from trifinger_s2r.farm.store import JobStore, QueuePolicy, User
from trifinger_s2r.farm.validation import MAX_UPLOAD_BYTES, UploadError, simulation_precheck, validate_bundle_files

TOKEN_COOKIE = "s2r_token"
MAX_EPISODES = 200
MAX_EPISODE_LENGTH = 100_000
"""Policy steps per episode a job may ask for (default: the policy's training episode length)."""
MAX_EXCITATION_LIFTS = 10
RESULTS_ARCHIVE_LIMIT_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class FarmSettings:
    db_url: str = "sqlite:///farm.db"
    data_dir: Path = Path("farm-data")
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    precheck: bool = True
    """Run every upload in simulation before it may queue."""
    queue: QueuePolicy = field(default_factory=QueuePolicy)


def request_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.cookies.get(TOKEN_COOKIE)


def csrf_token(token: str) -> str:
    """The CSRF token of a session: an HMAC keyed by its API token, so it needs no server state, survives server
    restarts, and a cross-site page cannot compute it."""
    return hmac.new(token.encode(), b"trifinger-s2r farm csrf", hashlib.sha256).hexdigest()


class Farm:
    """The server's state and the helpers its routes share; `current_user` and `robot_account` are FastAPI
    dependencies."""

    def __init__(self, settings: FarmSettings, store: JobStore) -> None:
        self.settings, self.store, self.data_dir = settings, store, Path(settings.data_dir)

        def current_user(request: Request) -> User:
            user = store.user_for_token(request_token(request))
            if user is None:
                raise HTTPException(401, "missing or invalid API token", headers={"WWW-Authenticate": "Bearer"})
            return user

        def robot_account(user: Annotated[User, Depends(current_user)]) -> User:
            if not user.is_admin:
                raise HTTPException(403, "robot endpoints need an admin (robot) token")
            return user

        self.current_user, self.robot_account = current_user, robot_account

    def job_dir(self, job_id: str) -> Path:
        return self.data_dir / "jobs" / job_id

    def own_job(self, job_id: str, user: User):
        job = self.store.job(job_id, user)
        if job is None:
            raise HTTPException(404, f"no job {job_id}")
        return job

    def job_view(self, job, waiting: dict | None = None, events: bool = False) -> dict:
        """The job's JSON: its fields, `waiting_reason` and `queue_position` (None unless queued) and, for one
        job, its history."""
        waiting = self.store.waiting([job]) if waiting is None else waiting
        view = {**job.as_dict(), "waiting_reason": None, "queue_position": None, **waiting.get(job.id, {})}
        if events:
            view["events"] = self.store.events(job.id)
        return view

    async def submit_job(self, user: User, policy: UploadFile, metadata: UploadFile, episodes: int,
                         level: int | None, seed: int, episode_length: int | None, request_id: str | None):
        """The one submission path (the API and the page's upload form): validate, pre-check, queue."""
        store, settings = self.store, self.settings
        if request_id is not None and (earlier := store.job_for_request(user, request_id)) is not None:
            return earlier  # a retried submission: the same job
        limit = settings.max_upload_bytes
        onnx_bytes = await policy.read(limit + 1)
        metadata_bytes = await metadata.read(limit + 1)
        if level is not None and level not in (-1, 1, 2, 3, 4):
            raise HTTPException(422, f"level {level} is not a goal level; valid: [-1, 1, 2, 3, 4]")
        try:
            meta = await run_in_threadpool(validate_bundle_files, onnx_bytes, metadata_bytes, limit)
        except UploadError as err:
            raise HTTPException(err.status, err.detail) from None
        job_id = store.new_job_id()
        policy_dir = self.job_dir(job_id) / "policy"
        policy_dir.mkdir(parents=True)
        (policy_dir / ONNX_FILE).write_bytes(onnx_bytes)
        (policy_dir / METADATA_FILE).write_bytes(metadata_bytes)
        if settings.precheck:
            check = await run_in_threadpool(simulation_precheck, policy_dir)
            if not check.ok:
                shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
                raise HTTPException(422, f"simulation pre-check failed: {check.reason}")
        job_settings = {"episodes": episodes, "level": meta["task"]["level"] if level is None else level,
                        "seed": seed, "policy_obs_type": meta["obs_type"]}
        if episode_length is not None:
            job_settings["episode_length_steps"] = episode_length
        job = store.submit(user, job_settings, job_id=job_id, request_id=request_id)
        if job.id != job_id:  # the same request_id won a race with this one: keep one job
            shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
        return job
