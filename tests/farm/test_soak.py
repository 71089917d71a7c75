"""Issue 16's soak, bounded for CI: `farm up` with 2 simulated robots, 3 users each submitting 3 short jobs one after
another, one worker SIGKILLed mid-job and the server SIGKILLed (farm up restarts both) once. Every job succeeds
exactly once, each robot runs several jobs and stays healthy, nothing stays queued.

The soak (trifinger_s2r.bench.farm_soak, also `trifinger-s2r bench farm-soak`) starts farm up in its own process
group and kills that group at the end, whatever happens; its timeouts are generous (a loaded 2-core machine) and a
failure names every problem and the tail of farm up's log."""

from __future__ import annotations

import json

from trifinger_s2r.bench.farm_soak import SoakConfig, run


def test_two_robots_three_users_a_worker_kill_and_a_server_restart(tmp_path):
    cfg = SoakConfig(jobs=9, robots=2, users=3, kill_worker_every=3, max_worker_kills=1, server_restarts=1,
                     episode_length=50, lease_s=15.0, job_timeout_s=400.0, timeout_s=600.0, work_dir=tmp_path,
                     keep=True)
    result = run(cfg)
    log = (tmp_path / "farm-up.log").read_text(errors="replace").splitlines()[-20:]
    summary = json.dumps(result, indent=1)
    assert result["ok"], f"problems: {result['problems']}\n{summary}\nfarm up's log:\n" + "\n".join(log)
    assert result["jobs_by_status"] == {"succeeded": 9} and result["jobs_lost"] == 0, summary
    assert result["jobs_doubled"] == 0 and result["jobs_duplicated"] == 0, summary
    assert len(result["jobs_per_robot"]) == 2 and min(result["jobs_per_robot"].values()) >= 2, summary
    (kill,) = result["worker_kills"]
    assert kill["mid_job"] and kill["robot_back_s"] is not None and kill["job_running_again_s"] is not None, summary
    (restart,) = result["server_restarts"]
    assert restart["api_back_s"] is not None and restart["next_job_event_s"] is not None, summary
    assert result["unhealthy_sightings"] == 0, summary
    assert all(r["healthy"] and r["jobs_run"] >= 2 for r in result["robots_at_end"]), summary
