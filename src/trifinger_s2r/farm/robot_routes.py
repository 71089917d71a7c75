"""The robot workers' API (admin tokens): poll for work reporting health, fetch the policy, start, heartbeat, hand a
job back, upload results, or fail it.

No `from __future__ import annotations` here: FastAPI must see the real dependency objects in the signatures.
"""

import shutil
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, HTTPException, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from trifinger_s2r.export.policy_bundle import METADATA_FILE, ONNX_FILE
from trifinger_s2r.farm.archive import ArchiveError, unpack_results
from trifinger_s2r.farm.context import RESULTS_ARCHIVE_LIMIT_BYTES, Farm
from trifinger_s2r.farm.store import User


class PollRequest(BaseModel):
    healthy: bool = True
    message: str = ""
    info: dict = Field(default_factory=dict)


class FailRequest(BaseModel):
    reason: str


class StartRequest(BaseModel):
    run_id: str = ""


def robot_router(farm: Farm) -> APIRouter:
    router, store = APIRouter(), farm.store
    Robot = Annotated[User, Depends(farm.robot_account)]

    @router.post("/api/robots/{robot}/poll")
    def poll(robot: str, body: PollRequest, _: Robot) -> dict:
        store.robot_seen(robot, body.healthy, body.message, body.info)
        if not body.healthy:  # an unhealthy robot runs nothing: what it holds goes back to the queue
            store.release_robot(robot, f"robot unhealthy: {body.message}")
            return {"job": None}
        store.schedule()
        job = store.assigned_job(robot)
        return {"job": job.as_dict() if job else None}

    @router.get("/api/robots/{robot}/jobs/{job_id}/policy/{name}")
    def policy_file(robot: str, job_id: str, name: str, _: Robot) -> FileResponse:
        job = store.job(job_id)
        if job is None or job.robot != robot or name not in (ONNX_FILE, METADATA_FILE):
            raise HTTPException(404, f"no {name} of job {job_id} for robot {robot}")
        return FileResponse(farm.job_dir(job_id) / "policy" / name)

    @router.post("/api/robots/{robot}/jobs/{job_id}/start")
    def start(robot: str, job_id: str, _: Robot, body: StartRequest | None = None) -> dict:
        if not store.start(job_id, robot, run_id=body.run_id if body else ""):
            raise HTTPException(409, f"job {job_id} is not assigned to {robot}")
        return {"status": "running"}

    @router.post("/api/robots/{robot}/jobs/{job_id}/release")
    def release(robot: str, job_id: str, body: FailRequest, _: Robot) -> dict:
        """The robot hands the job back (its worker is stopping, or it is unhealthy): queued again at once."""
        if not store.release(job_id, robot, body.reason):
            raise HTTPException(409, f"job {job_id} is not {robot}'s")
        return {"status": "queued"}

    @router.post("/api/robots/{robot}/jobs/{job_id}/heartbeat")
    def heartbeat(robot: str, job_id: str, _: Robot) -> dict:
        store.robot_alive(robot)
        if not store.heartbeat(job_id, robot):
            raise HTTPException(409, f"job {job_id} is no longer {robot}'s: stop it")
        return {"continue": True}

    @router.post("/api/robots/{robot}/jobs/{job_id}/complete")
    async def complete(robot: str, job_id: str, results: Annotated[UploadFile, File()], _: Robot,
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
        staging = farm.job_dir(job_id) / f"results-{uuid.uuid4().hex}"
        try:
            report = await run_in_threadpool(unpack_results, data, staging, RESULTS_ARCHIVE_LIMIT_BYTES)
            target = farm.job_dir(job_id) / "results"
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

    @router.post("/api/robots/{robot}/jobs/{job_id}/fail")
    def fail(robot: str, job_id: str, body: FailRequest, _: Robot) -> dict:
        if not store.fail(job_id, body.reason, robot=robot):
            raise HTTPException(409, f"job {job_id} is not running on {robot}")
        return {"status": "failed"}

    return router
