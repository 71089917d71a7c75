"""The farm's web pages (server-rendered HTML, no JavaScript): login, jobs list, job detail."""

from __future__ import annotations

from html import escape

from trifinger_s2r.farm.store import Job, User

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; } td, th { padding: .3rem .8rem; border-bottom: 1px solid #ddd; text-align: left; }
.status-succeeded { color: #11772d; } .status-failed { color: #b00020; } img, video { max-width: 640px; }
"""


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>{body}</body></html>")


def _rate(job: Job) -> str:
    result = job.as_dict()
    if result.get("success_rate") is None:
        return "-"
    return f"{result['success_rate']:.0%} ({result['ci80_low']:.0%}-{result['ci80_high']:.0%})"


def login_page() -> str:
    return _page("Sign in", "<h1>trifinger-s2r robot farm</h1><form method='get' action='/'>"
                            "<label>API token <input id='token' name='token' type='password' size='50'></label> "
                            "<button id='sign-in' type='submit'>Sign in</button></form>")


def jobs_page(user: User, jobs: list[Job]) -> str:
    rows = "".join(
        f"<tr class='job'><td><a href='/jobs/{escape(j.id)}'>{escape(j.id[:12])}</a></td>"
        f"<td class='status-{escape(j.status)}'>{escape(j.status)}</td><td>{escape(j.robot or '-')}</td>"
        f"<td>{escape(_rate(j))}</td><td>{escape(j.created_at.isoformat(timespec='seconds'))}</td></tr>"
        for j in jobs
    )
    table = ("<table id='jobs'><tr><th>job</th><th>status</th><th>robot</th><th>success (80% CI)</th>"
             f"<th>submitted (UTC)</th></tr>{rows}</table>") if jobs else "<p id='no-jobs'>No jobs yet.</p>"
    return _page("Jobs", f"<h1>Jobs of {escape(user.name)}</h1>{table}")


def job_page(job: Job, files: list[str]) -> str:
    info = job.as_dict()
    facts = "".join(f"<tr><th>{escape(k)}</th><td id='{escape(k)}'>{escape(str(v))}</td></tr>"
                    for k, v in info.items() if k != "settings")
    settings = escape(", ".join(f"{k}={v}" for k, v in job.settings.items()))
    base = f"/api/jobs/{escape(job.id)}/files/"
    media = "".join(f"<h2>{escape(f)}</h2><img src='{base}{escape(f)}' alt='{escape(f)}'>"
                    for f in files if f.endswith(".png"))
    media += "".join(f"<h2>video</h2><video controls src='{base}{escape(f)}'></video>" for f in files
                     if f.endswith(".mp4"))
    links = "".join(f"<li><a href='{base}{escape(f)}'>{escape(f)}</a></li>" for f in files if "/" not in f)
    download = f"<p><a href='/api/jobs/{escape(job.id)}/results'>all results (zip)</a></p>" if files else ""
    return _page(f"Job {job.id}", f"<p><a href='/'>all jobs</a></p><h1>Job {escape(job.id)}</h1>"
                                  f"<p>settings: {settings}</p><table>{facts}</table>{download}{media}"
                                  f"<ul>{links}</ul>")
