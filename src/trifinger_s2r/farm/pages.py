"""The farm's web pages (server-rendered HTML, no JavaScript): sign in, jobs list with the upload form, job detail
(refreshing itself until the job is finished), robots.

Every form that changes something is a POST carrying the session's CSRF token in a hidden field (api.csrf_token)."""

from __future__ import annotations

import math
from html import escape

from trifinger_s2r.farm.store import FINISHED_STATUSES, Job, User

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; } td, th { padding: .3rem .8rem; border-bottom: 1px solid #ddd; text-align: left; }
.status-succeeded, .success-yes { color: #11772d; } .status-failed, .success-no { color: #b00020; }
img, video { max-width: 640px; } .error { color: #b00020; font-weight: bold; }
.robot-free { color: #11772d; } .robot-unhealthy, .robot-offline { color: #b00020; } .waiting { color: #8a5a00; }
nav a, nav form { margin-right: 1rem; display: inline; } fieldset { max-width: 40rem; } label { margin-right: 1rem; }
"""
REFRESH_S = 2
"""A queued, assigned or running job's page reloads itself this often."""
LEVELS = [(1, "1: a position on the table"), (2, "2: a fixed position 8 cm up"), (3, "3: any position"),
          (4, "4: any pose (position and orientation)"), (-1, "-1: on the table, a random face up and yaw")]


def _page(title: str, body: str, refresh_s: int | None = None) -> str:
    refresh = f"<meta http-equiv='refresh' content='{refresh_s}'>" if refresh_s else ""
    return (f"<!doctype html><html><head><meta charset='utf-8'>{refresh}<title>{escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>{body}</body></html>")


def _nav(csrf: str) -> str:
    sign_out = (f"<form method='post' action='/sign-out'><input type='hidden' name='csrf' value='{escape(csrf)}'>"
                "<button id='sign-out' type='submit'>sign out</button></form>") if csrf else ""
    return f"<nav><a href='/'>jobs</a><a href='/robots'>robots</a>{sign_out}</nav>"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def cm(metres: float | None) -> str:
    return "-" if metres is None or not math.isfinite(metres) else f"{metres * 100:.1f} cm"


def degrees(radians: float | None) -> str:
    return "-" if radians is None or not math.isfinite(radians) else f"{math.degrees(radians):.1f}°"


def _rate(job: Job) -> str:
    result = job.as_dict()
    if result.get("success_rate") is None:
        return "-"
    return f"{percent(result['success_rate'])} ({percent(result['ci80_low'])}-{percent(result['ci80_high'])})"


def login_page(message: str = "") -> str:
    error = f"<p id='sign-in-error' class='error'>{escape(message)}</p>" if message else ""
    return _page("Sign in", "<h1>trifinger-s2r robot farm</h1>"
                            f"{error}<form method='post' action='/sign-in'>"
                            "<label>API token <input id='token' name='token' type='password' size='50' "
                            "autocomplete='current-password' required></label> "
                            "<button id='sign-in' type='submit'>Sign in</button></form>")


def _status(job: Job, waiting: dict) -> str:
    wait = waiting.get(job.id, {})
    reason, position = wait.get("waiting_reason"), wait.get("queue_position")
    place = f" (#{position} in the queue)" if position else ""
    return f"{job.status}{place}: {reason}" if reason else f"{job.status}{place}"


def upload_form(csrf: str) -> str:
    levels = "".join(f"<option value='{value}'>{escape(text)}</option>" for value, text in LEVELS)
    return (
        "<form id='upload' method='post' action='/jobs' enctype='multipart/form-data'><fieldset>"
        "<legend>Run a policy (an exported bundle: <code>trifinger-s2r export</code>)</legend>"
        f"<input type='hidden' name='csrf' value='{escape(csrf)}'>"
        "<p><label>policy.onnx <input id='policy' name='policy' type='file' accept='.onnx' required></label>"
        "<label>metadata.json <input id='metadata' name='metadata' type='file' accept='.json,application/json' "
        "required></label></p>"
        "<p><label>episodes <input id='episodes' name='episodes' type='number' min='1' max='200' value='10' "
        "required></label>"
        "<label>goal level <select id='level' name='level'><option value=''>the policy's own</option>"
        f"{levels}</select></label>"
        "<label>seed <input id='seed' name='seed' type='number' value='0' required></label>"
        "<label>episode length <input id='episode_length' name='episode_length' type='number' min='1' "
        "placeholder=\"the policy's\"> policy steps (50 a second)</label></p>"
        "<button id='submit' type='submit'>Submit</button></fieldset></form>")


def jobs_page(user: User, jobs: list[Job], waiting: dict | None = None, csrf: str = "", error: str = "") -> str:
    """waiting: JobStore.waiting(jobs), shown next to each queued job's status; error: why the last upload was
    refused."""
    waiting = waiting or {}
    rows = "".join(
        f"<tr class='job'><td><a href='/jobs/{escape(j.id)}'>{escape(j.id[:12])}</a></td>"
        f"<td class='status-{escape(j.status)}'>{escape(_status(j, waiting))}</td><td>{escape(j.robot or '-')}</td>"
        f"<td>{escape(_rate(j))}</td><td>{escape(j.created_at.isoformat(timespec='seconds'))}</td></tr>"
        for j in jobs
    )
    table = ("<table id='jobs'><tr><th>job</th><th>status</th><th>robot</th><th>success (80% CI)</th>"
             f"<th>submitted (UTC)</th></tr>{rows}</table>") if jobs else "<p id='no-jobs'>No jobs yet.</p>"
    refused = f"<p id='upload-error' class='error'>Not submitted: {escape(error)}</p>" if error else ""
    form = upload_form(csrf) if csrf else ""
    return _page("Jobs", f"{_nav(csrf)}<h1>Jobs of {escape(user.name)}</h1>{refused}{form}<h2>jobs</h2>{table}")


def robots_page(robots: list[dict], csrf: str = "") -> str:
    """JobStore.robots(): name, status, health and its reason, current job, last heard from, jobs run."""
    rows = "".join(
        f"<tr class='robot' id='robot-{escape(r['name'])}'><td>{escape(r['name'])}</td>"
        f"<td class='robot-{escape(r['status'])}'>{escape(r['status'])}</td>"
        f"<td>{'yes' if r['healthy'] else 'no'}</td><td class='health-message'>{escape(r['health_message'] or '-')}</td>"
        f"<td>{escape((r['job_id'] or '-')[:12])}</td>"
        f"<td>{escape(r['last_seen_at'] or '-')} ({r['seen_s_ago']:.0f} s ago)</td>"
        f"<td>{r['jobs_run']} ({r['jobs_succeeded']} succeeded, {r['jobs_failed']} failed)</td></tr>"
        for r in robots
    )
    table = ("<table id='robots'><tr><th>robot</th><th>status</th><th>healthy</th><th>health</th><th>job</th>"
             f"<th>last heard from (UTC)</th><th>jobs run</th></tr>{rows}</table>") if robots \
        else "<p id='no-robots'>No robot has connected yet.</p>"
    return _page("Robots", f"{_nav(csrf)}<h1>Robots</h1>{table}")


def _facts(info: dict) -> str:
    """The job's fields, numbers in their units."""
    shown = {"status": info["status"], "queue_position": info.get("queue_position"),
             "waiting_reason": info.get("waiting_reason"), "robot": info.get("robot"),
             "attempts": info.get("attempts"), "error": info.get("error")}
    if info.get("success_rate") is not None:
        shown.update(success_rate=percent(info["success_rate"]),
                     ci80=f"{percent(info['ci80_low'])} to {percent(info['ci80_high'])}",
                     episodes=info.get("episodes"), mean_position_error=cm(info.get("mean_position_error_m")),
                     mean_orientation_error=degrees(info.get("mean_orientation_error_rad")))
    shown.update({k: info.get(k) for k in ("created_at", "assigned_at", "started_at", "finished_at")})
    labels = {"ci80": "80% interval", "queue_position": "place in the queue"}
    return "".join(f"<tr><th>{escape(labels.get(k, k.replace('_', ' ')))}</th><td id='{escape(k)}'>"
                   f"{escape(str(v))}</td></tr>" for k, v in shown.items() if v is not None)


def _episodes(job: Job, files: list[str], base: str) -> str:
    """One row per episode of the report: success, errors, status and message, links to its files."""
    results = (job.result or {}).get("episode_results") or []
    rows = []
    for index, r in enumerate(results):
        folder = f"episode_{index:03d}/"
        links = " ".join(f"<a href='{base}{escape(f)}'>{escape(f[len(folder):])}</a>" for f in files
                         if f.startswith(folder))
        ok = "yes" if r.get("success") else "no"
        rows.append(f"<tr class='episode'><td>{index}</td><td class='success-{ok}'>{ok}</td>"
                    f"<td>{cm(r.get('position_error_m'))}</td><td>{degrees(r.get('orientation_error_rad'))}</td>"
                    f"<td>{escape(str(r.get('status', '-')))}</td><td>{escape(str(r.get('message') or ''))}</td>"
                    f"<td>{links}</td></tr>")
    if not rows:
        return ""
    return ("<h2>episodes</h2><table id='episodes'><tr><th>episode</th><th>success</th><th>position error</th>"
            "<th>orientation error</th><th>status</th><th>message</th><th>logs</th></tr>" + "".join(rows) + "</table>")


def job_page(job: Job, files: list[str], view: dict | None = None, csrf: str = "") -> str:
    """view: the API's JSON of the job (waiting_reason, queue_position, events); default its plain fields. A job
    not finished yet reloads itself every REFRESH_S seconds."""
    info = dict(view) if view is not None else job.as_dict()
    events = info.pop("events", [])
    settings = escape(", ".join(f"{k}={v}" for k, v in job.settings.items()))
    base = f"/api/jobs/{escape(job.id)}/files/"
    media = "".join(f"<h2>{escape(f)}</h2><img src='{base}{escape(f)}' alt='{escape(f)}'>"
                    for f in files if f.endswith(".png"))
    media += "".join(f"<h2>video</h2><video controls preload='metadata' src='{base}{escape(f)}'></video>"
                     for f in files if f.endswith(".mp4"))
    links = "".join(f"<li><a href='{base}{escape(f)}'>{escape(f)}</a></li>" for f in files if "/" not in f)
    download = f"<p><a href='/api/jobs/{escape(job.id)}/results'>all results (zip)</a></p>" if files else ""
    history = "".join(f"<tr class='event'><td>{escape(e['at'] or '')}</td><td>{escape(e['event'])}</td>"
                      f"<td>{escape(e['robot'] or '-')}</td><td>{escape(e['detail'] or '')}</td></tr>" for e in events)
    history = f"<h2>history</h2><table id='events'>{history}</table>" if events else ""
    finished = job.status in FINISHED_STATUSES
    note = "" if finished else f"<p class='waiting'>This page reloads every {REFRESH_S} s until the job ends.</p>"
    return _page(f"Job {job.id}", f"{_nav(csrf)}<h1>Job {escape(job.id)}</h1>{note}"
                                  f"<p>settings: {settings}</p><table id='facts'>{_facts(info)}</table>"
                                  f"{_episodes(job, files, base)}{media}{download}<h2>files</h2><ul>{links}</ul>"
                                  f"{history}", refresh_s=None if finished else REFRESH_S)
