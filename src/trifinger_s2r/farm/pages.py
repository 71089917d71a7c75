"""The farm's web pages (server-rendered HTML, no JavaScript): login, jobs list, job detail, robots."""

from __future__ import annotations

from html import escape

from trifinger_s2r.farm.store import Job, User

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; } td, th { padding: .3rem .8rem; border-bottom: 1px solid #ddd; text-align: left; }
.status-succeeded { color: #11772d; } .status-failed { color: #b00020; } img, video { max-width: 640px; }
.robot-free { color: #11772d; } .robot-unhealthy, .robot-offline { color: #b00020; } .waiting { color: #8a5a00; }
nav a { margin-right: 1rem; }
"""


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>{body}</body></html>")


NAV = "<nav><a href='/'>jobs</a><a href='/robots'>robots</a></nav>"


def _rate(job: Job) -> str:
    result = job.as_dict()
    if result.get("success_rate") is None:
        return "-"
    return f"{result['success_rate']:.0%} ({result['ci80_low']:.0%}-{result['ci80_high']:.0%})"


def login_page() -> str:
    return _page("Sign in", "<h1>trifinger-s2r robot farm</h1><form method='get' action='/'>"
                            "<label>API token <input id='token' name='token' type='password' size='50'></label> "
                            "<button id='sign-in' type='submit'>Sign in</button></form>")


def _status(job: Job, waiting: dict) -> str:
    reason = waiting.get(job.id, {}).get("waiting_reason")
    return f"{job.status}: {reason}" if reason else job.status


def jobs_page(user: User, jobs: list[Job], waiting: dict | None = None) -> str:
    """waiting: JobStore.waiting(jobs), shown next to each queued job's status."""
    waiting = waiting or {}
    rows = "".join(
        f"<tr class='job'><td><a href='/jobs/{escape(j.id)}'>{escape(j.id[:12])}</a></td>"
        f"<td class='status-{escape(j.status)}'>{escape(_status(j, waiting))}</td><td>{escape(j.robot or '-')}</td>"
        f"<td>{escape(_rate(j))}</td><td>{escape(j.created_at.isoformat(timespec='seconds'))}</td></tr>"
        for j in jobs
    )
    table = ("<table id='jobs'><tr><th>job</th><th>status</th><th>robot</th><th>success (80% CI)</th>"
             f"<th>submitted (UTC)</th></tr>{rows}</table>") if jobs else "<p id='no-jobs'>No jobs yet.</p>"
    return _page("Jobs", f"{NAV}<h1>Jobs of {escape(user.name)}</h1>{table}")


def robots_page(robots: list[dict]) -> str:
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
    return _page("Robots", f"{NAV}<h1>Robots</h1>{table}")


def job_page(job: Job, files: list[str], view: dict | None = None) -> str:
    """view: the API's JSON of the job (waiting_reason, queue_position, events); default its plain fields."""
    info = dict(view) if view is not None else job.as_dict()
    events = info.pop("events", [])
    facts = "".join(f"<tr><th>{escape(k)}</th><td id='{escape(k)}'>{escape(str(v))}</td></tr>"
                    for k, v in info.items() if k != "settings" and (v is not None or k == "error"))
    settings = escape(", ".join(f"{k}={v}" for k, v in job.settings.items()))
    base = f"/api/jobs/{escape(job.id)}/files/"
    media = "".join(f"<h2>{escape(f)}</h2><img src='{base}{escape(f)}' alt='{escape(f)}'>"
                    for f in files if f.endswith(".png"))
    media += "".join(f"<h2>video</h2><video controls src='{base}{escape(f)}'></video>" for f in files
                     if f.endswith(".mp4"))
    links = "".join(f"<li><a href='{base}{escape(f)}'>{escape(f)}</a></li>" for f in files if "/" not in f)
    download = f"<p><a href='/api/jobs/{escape(job.id)}/results'>all results (zip)</a></p>" if files else ""
    history = "".join(f"<tr class='event'><td>{escape(e['at'] or '')}</td><td>{escape(e['event'])}</td>"
                      f"<td>{escape(e['robot'] or '-')}</td><td>{escape(e['detail'] or '')}</td></tr>" for e in events)
    history = f"<h2>history</h2><table id='events'>{history}</table>" if events else ""
    return _page(f"Job {job.id}", f"{NAV}<h1>Job {escape(job.id)}</h1>"
                                  f"<p>settings: {settings}</p><table>{facts}</table>{download}{history}{media}"
                                  f"<ul>{links}</ul>")
