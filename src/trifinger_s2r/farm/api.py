"""The farm server: a FastAPI app over the job store and a data folder.

Users (Bearer token, or the `s2r_token` cookie the web page sets) submit exported policies and read their own jobs;
robot workers (admin tokens) poll for work, heartbeat, and upload results. Files live under
`data_dir/jobs/<job_id>/{policy,results}/`.

No `from __future__ import annotations` here: FastAPI must see the real dependency objects in the signatures.
"""

import io
import json
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from trifinger_s2r.export.policy_bundle import METADATA_FILE, ONNX_FILE
from trifinger_s2r.farm import pages
from trifinger_s2r.farm.archive import zip_folder
from trifinger_s2r.farm.store import FINISHED_STATUSES, JobStore, QueuePolicy, User
from trifinger_s2r.farm.validation import MAX_UPLOAD_BYTES, UploadError, simulation_precheck, validate_bundle_files

TOKEN_COOKIE = "s2r_token"
MAX_EPISODES = 200
RESULTS_ARCHIVE_LIMIT_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class FarmSettings:
    db_url: str = "sqlite:///farm.db"
    data_dir: Path = Path("farm-data")
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    precheck: bool = True
    """Run every upload in simulation before it may queue."""
    queue: QueuePolicy = field(default_factory=QueuePolicy)


class PollRequest(BaseModel):
    healthy: bool = True
    message: str = ""
    info: dict = Field(default_factory=dict)


class FailRequest(BaseModel):
    reason: str


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.cookies.get(TOKEN_COOKIE)


def create_app(settings: FarmSettings, store: JobStore | None = None) -> FastAPI:
    store = store or JobStore(settings.db_url, settings.queue)
    data_dir = Path(settings.data_dir)
    app = FastAPI(title="trifinger-s2r robot farm")
    app.state.store, app.state.settings = store, settings

    def current_user(request: Request) -> User:
        user = store.user_for_token(_token(request))
        if user is None:
            raise HTTPException(401, "missing or invalid API token", headers={"WWW-Authenticate": "Bearer"})
        return user

    def robot_account(user: Annotated[User, Depends(current_user)]) -> User:
        if not user.is_admin:
            raise HTTPException(403, "robot endpoints need an admin (robot) token")
        return user

    def job_dir(job_id: str) -> Path:
        return data_dir / "jobs" / job_id

    def own_job(job_id: str, user: User):
        job = store.job(job_id, user)
        if job is None:
            raise HTTPException(404, f"no job {job_id}")
        return job

    # --- users -----------------------------------------------------------------------------------

    @app.post("/api/jobs", status_code=201)
    async def submit(
        user: Annotated[User, Depends(current_user)],
        policy: Annotated[UploadFile, File(description="policy.onnx")],
        metadata: Annotated[UploadFile, File(description="metadata.json")],
        episodes: Annotated[int, Form(ge=1, le=MAX_EPISODES)] = 10,
        level: Annotated[int | None, Form()] = None,
        seed: Annotated[int, Form()] = 0,
    ) -> dict:
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
        policy_dir = job_dir(job_id) / "policy"
        policy_dir.mkdir(parents=True)
        (policy_dir / ONNX_FILE).write_bytes(onnx_bytes)
        (policy_dir / METADATA_FILE).write_bytes(metadata_bytes)
        if settings.precheck:
            check = await run_in_threadpool(simulation_precheck, policy_dir)
            if not check.ok:
                shutil.rmtree(job_dir(job_id), ignore_errors=True)
                raise HTTPException(422, f"simulation pre-check failed: {check.reason}")
        job_settings = {"episodes": episodes, "level": meta["task"]["level"] if level is None else level,
                        "seed": seed, "policy_obs_type": meta["obs_type"]}
        job = store.submit(user, job_settings, job_id=job_id)
        return {"job_id": job.id, "status": job.status}

    @app.get("/api/jobs")
    def list_jobs(user: Annotated[User, Depends(current_user)]) -> dict:
        return {"jobs": [j.as_dict() for j in store.jobs(user)]}

    @app.get("/api/jobs/{job_id}")
    def job_status(job_id: str, user: Annotated[User, Depends(current_user)]) -> dict:
        return own_job(job_id, user).as_dict()

    @app.get("/api/jobs/{job_id}/results")
    def job_results(job_id: str, user: Annotated[User, Depends(current_user)]) -> Response:
        job = own_job(job_id, user)
        results = job_dir(job_id) / "results"
        if job.status not in FINISHED_STATUSES or not results.is_dir():
            raise HTTPException(404, f"job {job_id} has no results yet (status {job.status})")
        return Response(zip_folder(results), media_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="{job_id}.zip"'})

    @app.get("/api/jobs/{job_id}/files/{name:path}")
    def job_file(job_id: str, name: str, user: Annotated[User, Depends(current_user)]) -> FileResponse:
        own_job(job_id, user)
        results = (job_dir(job_id) / "results").resolve()
        path = (results / name).resolve()
        if results not in path.parents or not path.is_file():
            raise HTTPException(404, f"job {job_id} has no file {name}")
        return FileResponse(path)

    # --- robots ----------------------------------------------------------------------------------

    @app.post("/api/robots/{robot}/poll")
    def poll(robot: str, body: PollRequest, _: Annotated[User, Depends(robot_account)]) -> dict:
        store.robot_seen(robot, body.healthy, body.message, body.info)
        store.schedule()
        job = store.assigned_job(robot)
        return {"job": job.as_dict() if job else None}

    @app.get("/api/robots/{robot}/jobs/{job_id}/policy/{name}")
    def policy_file(robot: str, job_id: str, name: str, _: Annotated[User, Depends(robot_account)]) -> FileResponse:
        job = store.job(job_id)
        if job is None or job.robot != robot or name not in (ONNX_FILE, METADATA_FILE):
            raise HTTPException(404, f"no {name} of job {job_id} for robot {robot}")
        return FileResponse(job_dir(job_id) / "policy" / name)

    @app.post("/api/robots/{robot}/jobs/{job_id}/start")
    def start(robot: str, job_id: str, _: Annotated[User, Depends(robot_account)]) -> dict:
        if not store.start(job_id, robot):
            raise HTTPException(409, f"job {job_id} is not assigned to {robot}")
        return {"status": "running"}

    @app.post("/api/robots/{robot}/jobs/{job_id}/heartbeat")
    def heartbeat(robot: str, job_id: str, _: Annotated[User, Depends(robot_account)]) -> dict:
        if not store.heartbeat(job_id, robot):
            raise HTTPException(409, f"job {job_id} is no longer {robot}'s: stop it")
        return {"continue": True}

    @app.post("/api/robots/{robot}/jobs/{job_id}/complete")
    async def complete(robot: str, job_id: str, results: Annotated[UploadFile, File()],
                       _: Annotated[User, Depends(robot_account)]) -> dict:
        data = await results.read(RESULTS_ARCHIVE_LIMIT_BYTES + 1)
        job = store.job(job_id)
        if job is None or job.robot != robot:
            raise HTTPException(409, f"job {job_id} is not {robot}'s")
        target = job_dir(job_id) / "results"
        report = await run_in_threadpool(_unpack_results, data, target)
        if not store.finish(job_id, robot, report):
            raise HTTPException(409, f"job {job_id} is no longer running on {robot}")
        return {"status": "succeeded"}

    @app.post("/api/robots/{robot}/jobs/{job_id}/fail")
    def fail(robot: str, job_id: str, body: FailRequest, _: Annotated[User, Depends(robot_account)]) -> dict:
        if not store.fail(job_id, body.reason, robot=robot):
            raise HTTPException(409, f"job {job_id} is not running on {robot}")
        return {"status": "failed"}

    # --- web pages -------------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request, token: str | None = None) -> Response:
        if token is not None:  # the login form: keep the token in a cookie, then show the list
            response = RedirectResponse("/", status_code=303)
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
            return response
        user = store.user_for_token(_token(request))
        if user is None:
            return HTMLResponse(pages.login_page(), status_code=401)
        return HTMLResponse(pages.jobs_page(user, store.jobs(user)))

    @app.get("/jobs/{job_id}", response_class=HTMLResponse)
    def job_page(job_id: str, request: Request) -> Response:
        user = store.user_for_token(_token(request))
        if user is None:
            return HTMLResponse(pages.login_page(), status_code=401)
        job = own_job(job_id, user)
        results = job_dir(job_id) / "results"
        files = sorted(str(p.relative_to(results)) for p in results.rglob("*") if p.is_file()) if results.is_dir() \
            else []
        return HTMLResponse(pages.job_page(job, files))

    return app


def _unpack_results(data: bytes, target: Path) -> dict:
    """Extract a worker's results archive (paths checked) and return its report.json."""
    if len(data) > RESULTS_ARCHIVE_LIMIT_BYTES:
        raise HTTPException(413, "results archive too large")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise HTTPException(400, "results are not a zip archive") from None
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    root = target.resolve()
    for member in archive.infolist():
        path = (target / member.filename).resolve()
        if root not in path.parents:
            raise HTTPException(400, f"results archive member {member.filename!r} escapes its folder")
    archive.extractall(target)
    report = target / "report.json"
    if not report.is_file():
        raise HTTPException(400, "results archive has no report.json")
    return json.loads(report.read_text())
