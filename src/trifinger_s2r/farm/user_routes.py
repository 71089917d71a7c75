"""The users' API: submit a policy or an excitation, read one's own jobs and their results, see the robots.

No `from __future__ import annotations` here: FastAPI must see the real dependency objects in the signatures.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, HTTPException, UploadFile
from fastapi.responses import FileResponse, Response

from trifinger_s2r.farm.archive import zip_folder
from trifinger_s2r.farm.context import MAX_EPISODE_LENGTH, MAX_EPISODES, MAX_EXCITATION_LIFTS, Farm
from trifinger_s2r.farm.store import FINISHED_STATUSES, User


def user_router(farm: Farm) -> APIRouter:
    router, store = APIRouter(), farm.store
    CurrentUser = Annotated[User, Depends(farm.current_user)]

    @router.post("/api/jobs", status_code=201)
    async def submit(
        user: CurrentUser,
        policy: Annotated[UploadFile, File(description="policy.onnx")],
        metadata: Annotated[UploadFile, File(description="metadata.json")],
        episodes: Annotated[int, Form(ge=1, le=MAX_EPISODES)] = 10,
        level: Annotated[int | None, Form()] = None,
        seed: Annotated[int, Form()] = 0,
        episode_length: Annotated[int | None, Form(ge=1, le=MAX_EPISODE_LENGTH)] = None,
        request_id: Annotated[str | None, Form(min_length=1, max_length=64)] = None,
    ) -> dict:
        job = await farm.submit_job(user, policy, metadata, episodes, level, seed, episode_length, request_id)
        return {"job_id": job.id, "status": job.status}

    @router.post("/api/jobs/excitation", status_code=201)
    def submit_excitation(
        user: CurrentUser,
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

    @router.get("/api/jobs")
    def list_jobs(user: CurrentUser) -> dict:
        jobs = store.jobs(user)
        waiting = store.waiting(jobs)
        return {"jobs": [farm.job_view(j, waiting) for j in jobs]}

    @router.get("/api/jobs/{job_id}")
    def job_status(job_id: str, user: CurrentUser) -> dict:
        return farm.job_view(farm.own_job(job_id, user), events=True)

    @router.get("/api/jobs/{job_id}/results")
    def job_results(job_id: str, user: CurrentUser) -> Response:
        job = farm.own_job(job_id, user)
        results = farm.job_dir(job_id) / "results"
        if job.status not in FINISHED_STATUSES or not results.is_dir():
            raise HTTPException(404, f"job {job_id} has no results yet (status {job.status})")
        return Response(zip_folder(results), media_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="{job_id}.zip"'})

    @router.get("/api/jobs/{job_id}/files/{name:path}")
    def job_file(job_id: str, name: str, user: CurrentUser) -> FileResponse:
        farm.own_job(job_id, user)
        results = (farm.job_dir(job_id) / "results").resolve()
        path = (results / name).resolve()
        if results not in path.parents or not path.is_file():
            raise HTTPException(404, f"job {job_id} has no file {name}")
        return FileResponse(path)

    @router.get("/api/robots")
    def robots(_: CurrentUser) -> dict:
        """Every robot: status, health and its reason, busy/free, last heartbeat, jobs run (any signed-in user)."""
        return {"robots": store.robots()}

    return router
