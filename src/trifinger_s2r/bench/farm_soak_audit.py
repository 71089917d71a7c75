"""The farm soak's audit: what the database and the soak's own observations say about lost, doubled and recovered
jobs (pure functions over them; `bench.farm_soak` runs the load)."""

from __future__ import annotations

import datetime
import statistics
import time
from collections import Counter, defaultdict
from dataclasses import asdict
from pathlib import Path

FINISHED = ("succeeded", "failed")


def parse_utc(stamp: str | None) -> float | None:
    """The server's ISO time (UTC, 'Z') as a Unix time."""
    if not stamp:
        return None
    return datetime.datetime.fromisoformat(stamp.rstrip("Z")).replace(tzinfo=datetime.UTC).timestamp()


def _percentiles(values: list[float]) -> dict:
    if not values:
        return {"median": None, "max": None, "n": 0}
    return {"median": round(statistics.median(values), 2), "max": round(max(values), 2), "n": len(values)}


def audit(soak, load_s: float, timed_out: bool, robots_end: list[dict]) -> dict:
    """The soak's result from the database and what the soak saw (`soak`: the running _Soak)."""
    from trifinger_s2r.farm.store import JobStore  # the CLI parses without the database layer

    cfg = soak.cfg
    store = JobStore(soak.db)
    users = {store.user_for_token(t).id: name for name, t in soak.tokens.items()}
    jobs = {j.id: j for j in store.all_jobs() if j.user_id in users}
    events: dict[str, list[dict]] = defaultdict(list)
    for e in store.all_events():
        if e["job_id"] in jobs:
            events[e["job_id"]].append(e)
    store.engine.dispose()
    known = {s.job_id for s in soak.submitted}
    by_status = Counter(j.status for j in jobs.values())
    failed = sorted(j for j in known if j in jobs and jobs[j].status == "failed")
    stuck = sorted(j for j in known if j in jobs and jobs[j].status not in FINISHED)
    vanished = sorted(known - set(jobs))
    duplicated = sorted(set(jobs) - known)
    doubled = sorted(j for j, ev in events.items()
                     if sum(e["event"] in ("succeeded", "complete_rejected") for e in ev) > 1)
    not_submitted = cfg.jobs - len(known)
    runs = {j: sum(e["event"] in ("started", "resumed") for e in ev) for j, ev in events.items()}
    queue_wait = []
    run_time = []
    for job_id, job in jobs.items():
        created = job.created_at.replace(tzinfo=datetime.UTC).timestamp()
        first = next((parse_utc(e["at"]) for e in events[job_id] if e["event"] == "assigned"), None)
        if first is not None:
            queue_wait.append(first - created)
        if job.status == "succeeded" and job.started_at and job.finished_at:
            run_time.append((job.finished_at - job.started_at).total_seconds())
    per_robot = Counter(jobs[j].robot for j in known if j in jobs and jobs[j].status == "succeeded")
    finished_at = [j.finished_at.replace(tzinfo=datetime.UTC).timestamp() for j in jobs.values() if j.finished_at]
    first_submit = min((s.submitted_at for s in soak.submitted), default=time.time())
    span_h = (max(finished_at, default=first_submit) - first_submit) / 3600 or float("nan")
    kills = [worker_recovery(k, events, soak.samples) for k in soak.worker_kills]
    restarts = [server_recovery(k, events) for k in soak.server_kills]
    unhealthy_end = [r["name"] for r in robots_end if not r["healthy"]]
    problems = []
    if not_submitted:
        problems.append(f"{not_submitted} jobs were never submitted")
    for label, ids in (("failed", failed), ("stuck", stuck), ("vanished", vanished),
                       ("duplicated (a second job for one submission)", duplicated),
                       ("run twice to completion", doubled)):
        if ids:
            problems.append(f"{len(ids)} jobs {label}: {[i[:12] for i in ids[:10]]}")
    short = [r for r in soak.robot_names if per_robot.get(r, 0) < 2]
    if short:
        problems.append(f"robots with fewer than 2 jobs: {short} ({dict(per_robot)})")
    if soak.unhealthy_seen:
        problems.append(f"robots seen unhealthy {len(soak.unhealthy_seen)} times: {soak.unhealthy_seen[:3]}")
    if unhealthy_end:
        problems.append(f"robots unhealthy at the end: {unhealthy_end}")
    if timed_out:
        problems.append(f"the run did not finish within {cfg.timeout_s:.0f} s")
    if cfg.kill_worker_every and cfg.jobs > cfg.kill_worker_every and not soak.worker_kills:
        problems.append("no worker was killed (no running job was found when one was due)")
    if len(soak.server_kills) < cfg.server_restarts:
        problems.append(f"{len(soak.server_kills)} of {cfg.server_restarts} server restarts happened")
    problems += [f"server restart: the API did not come back ({r})" for r in restarts if r["api_back_s"] is None]
    problems += soak.notes
    return {
        "ok": not problems, "problems": problems,
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
        "db_backend": "sqlite" if soak.db.startswith("sqlite") else soak.db.split(":", 1)[0],
        "jobs_submitted": len(known), "jobs_by_status": dict(by_status), "jobs_failed": len(failed),
        "jobs_stuck": len(stuck), "jobs_vanished": len(vanished), "jobs_duplicated": len(duplicated),
        "jobs_doubled": len(doubled), "jobs_lost": len(failed) + len(stuck) + len(vanished),
        "runs_per_job": dict(Counter(runs.values())),
        "jobs_per_robot": dict(sorted(per_robot.items())),
        "jobs_per_hour_per_robot": round(by_status.get("succeeded", 0) / span_h / cfg.robots, 1),
        "queue_wait_s": _percentiles(queue_wait), "job_run_s": _percentiles(run_time),
        "load_s": round(load_s, 1), "worker_kills": kills, "idle_worker_kills": len(soak.idle_kills),
        "server_restarts": restarts,
        "unhealthy_sightings": len(soak.unhealthy_seen),
        "robots_at_end": [{k: r[k] for k in ("name", "status", "healthy", "health_message", "jobs_run")}
                          for r in robots_end],
    }

def worker_recovery(kill: dict, events: dict[str, list[dict]], samples: list[tuple[float, list[dict]]]) -> dict:
    """Back: the first robot sample after the kill with a new worker pid, online and healthy. Job again: the
    interrupted job's next start (a new run, on any robot) after the kill."""
    at = kill["at"]
    back = next((t for t, robots in samples if t > at for r in robots
                 if r["name"] == kill["robot"] and r["info"].get("pid") not in (None, kill["pid"])
                 and r["online"] and r["healthy"]), None)
    job_events = events.get(kill["job_id"], [])
    again = next((parse_utc(e["at"]) for e in job_events
                  if e["event"] in ("started", "resumed") and parse_utc(e["at"]) > at), None)
    succeeded = next((parse_utc(e["at"]) for e in job_events if e["event"] == "succeeded"), None)
    how = [f"{e['event']} on {e['robot']}" for e in job_events
           if e["event"] in ("requeued", "started", "resumed", "succeeded") and parse_utc(e["at"]) > at]
    return {"robot": kill["robot"], "job_id": kill["job_id"], "after_jobs": kill["after_jobs"],
            "mid_job": succeeded is None or succeeded > at,
            "robot_back_s": round(back - at, 1) if back else None,
            "job_running_again_s": round(again - at, 1) if again else None,
            "job_finished_s": round(succeeded - at, 1) if succeeded and succeeded > at else None,
            "job_after_kill": how}

def server_recovery(kill: dict, events: dict[str, list[dict]]) -> dict:
    at = kill["at"]
    later = sorted(parse_utc(e["at"]) for ev in events.values() for e in ev
                   if e["event"] in ("assigned", "started", "resumed", "succeeded") and parse_utc(e["at"]) > at)
    return {"after_jobs": kill["after_jobs"], "api_back_s": kill["api_back_s"],
            "next_job_event_s": round(later[0] - at, 1) if later else None}
