"""The farm's web pages: sign in and out (the token kept in an HttpOnly cookie), the jobs page with its upload
form, a job's page, the robots page. Every form POST is checked for its origin and carries the session's CSRF
token.

No `from __future__ import annotations` here: FastAPI must see the real dependency objects in the signatures.
"""

import hmac
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from trifinger_s2r.farm import pages
from trifinger_s2r.farm.context import (
    MAX_EPISODE_LENGTH,
    MAX_EPISODES,
    TOKEN_COOKIE,
    Farm,
    csrf_token,
    request_token,
)
from trifinger_s2r.farm.store import User


def _signed_out() -> Response:
    return HTMLResponse(pages.login_page(), status_code=401)


def _check_origin(request: Request) -> None:
    """A form POST whose browser says where it comes from must come from this site."""
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        raise HTTPException(403, "cross-site form submission refused")


def _check_csrf(request: Request, csrf: str) -> None:
    """A form POST must come from this site and carry the session's CSRF token (a cross-site page cannot read
    it)."""
    _check_origin(request)
    token = request_token(request)
    if token is None or not hmac.compare_digest(csrf.encode(), csrf_token(token).encode()):
        raise HTTPException(403, "missing or wrong CSRF token: reload the page and submit again")


def page_router(farm: Farm) -> APIRouter:
    router, store = APIRouter(), farm.store

    def page_user(request: Request) -> tuple[User | None, str]:
        """The signed-in user of a page and the CSRF token its forms carry (derived from the session's token)."""
        token = request_token(request)
        user = store.user_for_token(token)
        return user, csrf_token(token) if user is not None else ""

    @router.get("/", response_class=HTMLResponse)
    def index(request: Request) -> Response:
        user, csrf = page_user(request)
        if user is None:
            return _signed_out()
        jobs = store.jobs(user)
        return HTMLResponse(pages.jobs_page(user, jobs, store.waiting(jobs), csrf=csrf))

    @router.post("/sign-in", response_class=HTMLResponse)
    def sign_in(request: Request, token: Annotated[str, Form(max_length=200)] = "") -> Response:
        """The sign-in form (POST: the token never appears in a URL): a right token is kept in an HttpOnly,
        SameSite=Lax cookie (Secure when served over HTTPS); a wrong one says so. Another site's form cannot sign
        the browser into an account of its choosing (Origin checked)."""
        _check_origin(request)
        token = token.strip()
        if store.user_for_token(token) is None:
            message = "Enter your API token." if not token else "Wrong token: no farm account has this API token."
            return HTMLResponse(pages.login_page(message), status_code=401)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="lax", secure=request.url.scheme == "https")
        return response

    @router.post("/sign-out")
    def sign_out(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
        _check_csrf(request, csrf)
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(TOKEN_COOKIE, httponly=True, samesite="lax", secure=request.url.scheme == "https")
        return response

    @router.post("/jobs", response_class=HTMLResponse)
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
            return _signed_out()
        _check_csrf(request, csrf)
        try:
            count, length = int(episodes), int(episode_length) if episode_length.strip() else None
            if not 1 <= count <= MAX_EPISODES:
                raise HTTPException(422, f"episodes must be 1 to {MAX_EPISODES}, got {count}")
            if length is not None and not 1 <= length <= MAX_EPISODE_LENGTH:
                raise HTTPException(422, f"episode length must be 1 to {MAX_EPISODE_LENGTH} policy steps")
            job = await farm.submit_job(user, policy, metadata, count, int(level) if level.strip() else None,
                                        int(seed), length, None)
        except (HTTPException, ValueError) as err:
            status = err.status_code if isinstance(err, HTTPException) else 422
            detail = err.detail if isinstance(err, HTTPException) else f"not a number: {err}"
            jobs = store.jobs(user)
            return HTMLResponse(pages.jobs_page(user, jobs, store.waiting(jobs), csrf=csrf_expected,
                                                error=str(detail)), status_code=status)
        return RedirectResponse(f"/jobs/{job.id}", status_code=303)

    @router.get("/robots", response_class=HTMLResponse)
    def robots_page(request: Request) -> Response:
        user, csrf = page_user(request)
        if user is None:
            return _signed_out()
        return HTMLResponse(pages.robots_page(store.robots(), csrf=csrf))

    @router.get("/jobs/{job_id}", response_class=HTMLResponse)
    def job_page(job_id: str, request: Request) -> Response:
        user, csrf = page_user(request)
        if user is None:
            return _signed_out()
        job = farm.own_job(job_id, user)
        results = farm.job_dir(job_id) / "results"
        files = sorted(str(p.relative_to(results)) for p in results.rglob("*") if p.is_file()) if results.is_dir() \
            else []
        return HTMLResponse(pages.job_page(job, files, farm.job_view(job, events=True), csrf=csrf))

    return router
