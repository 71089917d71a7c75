"""The farm server: a FastAPI app over the job store and a data folder.

Users (Bearer token, or the `s2r_token` cookie that the page's POST sign-in form sets: HttpOnly, SameSite=Lax, Secure
over HTTPS; the page's forms carry a CSRF token) submit exported policies (the API or the page's upload form, one
path), read their own jobs (a queued job says why it waits) and see the robots; robot workers (admin tokens) poll for
work (reporting their health: an unhealthy robot's jobs go back to the queue), heartbeat, upload results, or hand a
job back. Files live under `data_dir/jobs/<job_id>/{policy,results}/`.

No `from __future__ import annotations` here: FastAPI must see the real dependency objects in the signatures.
"""

import hashlib
import hmac
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from trifinger_s2r.export.policy_bundle import METADATA_FILE, ONNX_FILE
from trifinger_s2r.farm import pages
from trifinger_s2r.farm.archive import ArchiveError, unpack_results, zip_folder
from trifinger_s2r.farm.store import FINISHED_STATUSES, JobStore, QueuePolicy, User
from trifinger_s2r.farm.validation import MAX_UPLOAD_BYTES, UploadError, simulation_precheck, validate_bundle_files

TOKEN_COOKIE = "s2r_token"
MAX_EPISODES = 200
MAX_EPISODE_LENGTH = 100_000
MAX_EXCITATION_LIFTS = 10
"""Policy steps per episode a job may ask for (default: the policy's training episode length)."""
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


class StartRequest(BaseModel):
    run_id: str = ""


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.cookies.get(TOKEN_COOKIE)


def csrf_token(token: str) -> str:
    """The CSRF token of a session: an HMAC keyed by its API token, so it needs no server state, survives server
    restarts, and a cross-site page cannot compute it."""
    return hmac.new(token.encode(), b"trifinger-s2r farm csrf", hashlib.sha256).hexdigest()


def create_app(settings: FarmSettings, store: JobStore | None = None) -> FastAPI:
    store = store or JobStore(settings.db_url, settings.queue)
    store.grace_leases()  # workers could not heartbeat while no server answered
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

    def job_view(job, waiting: dict | None = None, events: bool = False) -> dict:
        """The job's JSON: its fields, `waiting_reason` and `queue_position` (None unless queued) and, for one
        job, its history."""
        waiting = store.waiting([job]) if waiting is None else waiting
        view = {**job.as_dict(), "waiting_reason": None, "queue_position": None, **waiting.get(job.id, {})}
        if events:
            view["events"] = store.events(job.id)
        return view

    # --- users -----------------------------------------------------------------------------------

    async def submit_job(user: User, policy: UploadFile, metadata: UploadFile, episodes: int, level: int | None,
                         seed: int, episode_length: int | None, request_id: str | None):
        """The one submission path (the API and the page's upload form): validate, pre-check, queue."""
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
        if episode_length is not None:
            job_settings["episode_length_steps"] = episode_length
        job = store.submit(user, job_settings, job_id=job_id, request_id=request_id)
        if job.id != job_id:  # the same request_id won a race with this one: keep one job
            shutil.rmtree(job_dir(job_id), ignore_errors=True)
        return job

    @app.post("/api/jobs", status_code=201)
    async def submit(
        user: Annotated[User, Depends(current_user)],
        policy: Annotated[UploadFile, File(description="policy.onnx")],
        metadata: Annotated[UploadFile, File(description="metadata.json")],
        episodes: Annotated[int, Form(ge=1, le=MAX_EPISODES)] = 10,
        level: Annotated[int | None, Form()] = None,
        seed: Annotated[int, Form()] = 0,
        episode_length: Annotated[int | None, Form(ge=1, le=MAX_EPISODE_LENGTH)] = None,
        request_id: Annotated[str | None, Form(min_length=1, max_length=64)] = None,
    ) -> dict:
        job = await submit_job(user, policy, metadata, episodes, level, seed, episode_length, request_id)
        return {"job_id": job.id, "status": job.status}

    @app.post("/api/jobs/excitation", status_code=201)
    def submit_excitation(
        user: Annotated[User, Depends(current_user)],
        episodes: Annotated[int, Form(ge=1, le=MAX_EPISODES)] = 1,
        seed: Annotated[int, Form()] = 0,
        lifts: Annotated[int, Form(ge=0, le=MAX_EXCITATION_LIFTS)] = 0,
        request_id: Annotated[str | None, Form(min_length=1, max_length=64)] = None,
    ) -> dict:
        """A scripted excitation instead of a policy (calibration.excitation, with `lifts` grasp-lift cycles): its
        logs are for `calibrate`."""
        if request_id is not None and (earlier := store.job_for_request(user, request_id)) is not None:
            return {"job_id": earlier.id, "status": earlier.status}
        job = store.submit(user, {"kind": "excitation", "episodes": episodes, "seed": seed, "lifts": lifts,
                                  "level": -1}, request_id=request_id)
        return {"job_id": job.id, "status": job.status}

    @app.get("/api/jobs")
    def list_jobs(user: Annotated[User, Depends(current_user)]) -> dict:
        jobs = store.jobs(user)
        waiting = store.waiting(jobs)
        return {"jobs": [job_view(j, waiting) for j in jobs]}

    @app.get("/api/jobs/{job_id}")
    def job_status(job_id: str, user: Annotated[User, Depends(current_user)]) -> dict:
        return job_view(own_job(job_id, user), events=True)

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

    @app.get("/api/robots")
    def robots(_: Annotated[User, Depends(current_user)]) -> dict:
        """Every robot: status, health and its reason, busy/free, last heartbeat, jobs run (any signed-in user)."""
        return {"robots": store.robots()}

    @app.post("/api/robots/{robot}/poll")
    def poll(robot: str, body: PollRequest, _: Annotated[User, Depends(robot_account)]) -> dict:
        store.robot_seen(robot, body.healthy, body.message, body.info)
        if not body.healthy:  # an unhealthy robot runs nothing: what it holds goes back to the queue
            store.release_robot(robot, f"robot unhealthy: {body.message}")
            return {"job": None}
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
    def start(robot: str, job_id: str, _: Annotated[User, Depends(robot_account)],
              body: StartRequest | None = None) -> dict:
        if not store.start(job_id, robot, run_id=body.run_id if body else ""):
            raise HTTPException(409, f"job {job_id} is not assigned to {robot}")
        return {"status": "running"}

    @app.post("/api/robots/{robot}/jobs/{job_id}/release")
    def release(robot: str, job_id: str, body: FailRequest, _: Annotated[User, Depends(robot_account)]) -> dict:
        """The robot hands the job back (its worker is stopping, or it is unhealthy): queued again at once."""
        if not store.release(job_id, robot, body.reason):
            raise HTTPException(409, f"job {job_id} is not {robot}'s")
        return {"status": "queued"}

    @app.post("/api/robots/{robot}/jobs/{job_id}/heartbeat")
    def heartbeat(robot: str, job_id: str, _: Annotated[User, Depends(robot_account)]) -> dict:
        store.robot_alive(robot)
        if not store.heartbeat(job_id, robot):
            raise HTTPException(409, f"job {job_id} is no longer {robot}'s: stop it")
        return {"continue": True}

    @app.post("/api/robots/{robot}/jobs/{job_id}/complete")
    async def complete(robot: str, job_id: str, results: Annotated[UploadFile, File()],
                       _: Annotated[User, Depends(robot_account)],
                       run_id: Annotated[str, Form(max_length=64)] = "") -> dict:
        """A run's results. Once per job: the same run's upload again (its answer was lost) is answered as before;
        any other run's is refused (409) and written into the job's history as complete_rejected."""
        data = await results.read(RESULTS_ARCHIVE_LIMIT_BYTES + 1)
        job = store.job(job_id)
        if job is not None and job.status == "succeeded" and run_id and store.succeeded_run(job_id) == run_id:
            return {"status": "succeeded"}
        if job is None or job.robot != robot or job.status != "running":
            if job is not None:
                store.record_event(job_id, "complete_rejected", robot, run_id)
            raise HTTPException(409, f"job {job_id} is not running on {robot}")
        staging = job_dir(job_id) / f"results-{uuid.uuid4().hex}"
        try:
            report = await run_in_threadpool(unpack_results, data, staging, RESULTS_ARCHIVE_LIMIT_BYTES)
            target = job_dir(job_id) / "results"
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
        except ArchiveError as err:
            raise HTTPException(err.status, str(err)) from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        if not store.finish(job_id, robot, report, run_id=run_id):
            store.record_event(job_id, "complete_rejected", robot, run_id)
            raise HTTPException(409, f"job {job_id} is no longer running on {robot}")
        return {"status": "succeeded"}

    @app.post("/api/robots/{robot}/jobs/{job_id}/fail")
    def fail(robot: str, job_id: str, body: FailRequest, _: Annotated[User, Depends(robot_account)]) -> dict:
        if not store.fail(job_id, body.reason, robot=robot):
            raise HTTPException(409, f"job {job_id} is not running on {robot}")
        return {"status": "failed"}

    # --- web pages -------------------------------------------------------------------------------

    def page_user(request: Request) -> tuple[User | None, str]:
        """The signed-in user of a page and the CSRF token its forms carry (derived from the session's token)."""
        token = _token(request)
        user = store.user_for_token(token)
        return user, csrf_token(token) if user is not None else ""

    def signed_out() -> Response:
        return HTMLResponse(pages.login_page(), status_code=401)

    def check_origin(request: Request) -> None:
        """A form POST whose browser says where it comes from must come from this site."""
        origin = request.headers.get("origin")
        if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
            raise HTTPException(403, "cross-site form submission refused")

    def check_csrf(request: Request, csrf: str) -> None:
        """A form POST must come from this site and carry the session's CSRF token (a cross-site page cannot read
        it)."""
        check_origin(request)
        token = _token(request)
        if token is None or not hmac.compare_digest(csrf.encode(), csrf_token(token).encode()):
            raise HTTPException(403, "missing or wrong CSRF token: reload the page and submit again")

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request) -> Response:
        user, csrf = page_user(request)
        if user is None:
            return signed_out()
        jobs = store.jobs(user)
        return HTMLResponse(pages.jobs_page(user, jobs, store.waiting(jobs), csrf=csrf))

    @app.post("/sign-in", response_class=HTMLResponse)
    def sign_in(request: Request, token: Annotated[str, Form(max_length=200)] = "") -> Response:
        """The sign-in form (POST: the token never appears in a URL): a right token is kept in an HttpOnly,
        SameSite=Lax cookie (Secure when served over HTTPS); a wrong one says so. Another site's form cannot sign
        the browser into an account of its choosing (Origin checked)."""
        check_origin(request)
        token = token.strip()
        if store.user_for_token(token) is None:
            message = "Enter your API token." if not token else "Wrong token: no farm account has this API token."
            return HTMLResponse(pages.login_page(message), status_code=401)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="lax", secure=request.url.scheme == "https")
        return response

    @app.post("/sign-out")
    def sign_out(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
        check_csrf(request, csrf)
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(TOKEN_COOKIE, httponly=True, samesite="lax", secure=request.url.scheme == "https")
        return response

    @app.post("/jobs", response_class=HTMLResponse)
    async def submit_form(
        request: Request,
        policy: Annotated[UploadFile, File(description="policy.onnx")],
        metadata: Annotated[UploadFile, File(description="metadata.json")],
        csrf: Annotated[str, Form()] = "",
        episodes: Annotated[str, Form()] = "10",
        level: Annotated[str, Form()] = "",
        seed: Annotated[str, Form()] = "0",
        episode_length: Annotated[str, Form()] = "",
    ) -> Response:
        """The page's upload form: the API's submission path; the job's page next, or the form with the reason."""
        user, csrf_expected = page_user(request)
        if user is None:
            return signed_out()
        check_csrf(request, csrf)
        try:
            count, length = int(episodes), int(episode_length) if episode_length.strip() else None
            if not 1 <= count <= MAX_EPISODES:
                raise HTTPException(422, f"episodes must be 1 to {MAX_EPISODES}, got {count}")
            if length is not None and not 1 <= length <= MAX_EPISODE_LENGTH:
                raise HTTPException(422, f"episode length must be 1 to {MAX_EPISODE_LENGTH} policy steps")
            job = await submit_job(user, policy, metadata, count, int(level) if level.strip() else None, int(seed),
                                   length, None)
        except (HTTPException, ValueError) as err:
            status = err.status_code if isinstance(err, HTTPException) else 422
            detail = err.detail if isinstance(err, HTTPException) else f"not a number: {err}"
            jobs = store.jobs(user)
            return HTMLResponse(pages.jobs_page(user, jobs, store.waiting(jobs), csrf=csrf_expected,
                                                error=str(detail)), status_code=status)
        return RedirectResponse(f"/jobs/{job.id}", status_code=303)

    @app.get("/robots", response_class=HTMLResponse)
    def robots_page(request: Request) -> Response:
        user, csrf = page_user(request)
        if user is None:
            return signed_out()
        return HTMLResponse(pages.robots_page(store.robots(), csrf=csrf))

    @app.get("/jobs/{job_id}", response_class=HTMLResponse)
    def job_page(job_id: str, request: Request) -> Response:
        user, csrf = page_user(request)
        if user is None:
            return signed_out()
        job = own_job(job_id, user)
        results = job_dir(job_id) / "results"
        files = sorted(str(p.relative_to(results)) for p in results.rglob("*") if p.is_file()) if results.is_dir() \
            else []
        return HTMLResponse(pages.job_page(job, files, job_view(job, events=True), csrf=csrf))

    return app
