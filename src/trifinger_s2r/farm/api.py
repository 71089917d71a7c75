"""The farm server: a FastAPI app over the job store and a data folder.

Users (Bearer token, or the `s2r_token` cookie that the page's POST sign-in form sets: HttpOnly, SameSite=Lax, Secure
over HTTPS; the page's forms carry a CSRF token) submit exported policies (the API or the page's upload form, one
path), read their own jobs (a queued job says why it waits) and see the robots; robot workers (admin tokens) poll for
work (reporting their health: an unhealthy robot's jobs go back to the queue), heartbeat, upload results, or hand a
job back. Files live under `data_dir/jobs/<job_id>/{policy,results}/`. The routes: `user_routes`, `robot_routes`,
`page_routes`; what they share: `context`.
"""

from __future__ import annotations

from fastapi import FastAPI

from trifinger_s2r.farm.context import (  # noqa: F401 (the server's settings and limits, imported from here)
    MAX_EPISODE_LENGTH,
    MAX_EPISODES,
    MAX_EXCITATION_LIFTS,
    RESULTS_ARCHIVE_LIMIT_BYTES,
    TOKEN_COOKIE,
    Farm,
    FarmSettings,
    csrf_token,
)
from trifinger_s2r.farm.page_routes import page_router
from trifinger_s2r.farm.robot_routes import robot_router
from trifinger_s2r.farm.store import JobStore
from trifinger_s2r.farm.user_routes import user_router


def create_app(settings: FarmSettings, store: JobStore | None = None) -> FastAPI:
    store = store or JobStore(settings.db_url, settings.queue)
    store.grace_leases()  # workers could not heartbeat while no server answered
    app = FastAPI(title="trifinger-s2r robot farm")
    app.state.store, app.state.settings = store, settings
    farm = Farm(settings, store)
    for router in (user_router(farm), robot_router(farm), page_router(farm)):
        app.include_router(router)
    return app
