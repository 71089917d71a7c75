"""The farm API: tokens, upload validation, the simulation pre-check, per-user visibility, robots, pages."""

from __future__ import annotations

import json
import zipfile
from io import BytesIO

import pytest

from tests.farm.conftest import auth, bundle_with_output, upload_files
from trifinger_s2r.farm.worker import FarmWorker, WorkerConfig


def _submit(client, token, bundle, **form):
    data = {"episodes": "1", **{k: str(v) for k, v in form.items()}}
    return client.post("/api/jobs", headers=auth(token), files=upload_files(bundle), data=data)


class TestTokens:
    @pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic x"}])
    def test_missing_or_wrong_token_is_401(self, farm, headers):
        client, _, _ = farm
        response = client.get("/api/jobs", headers=headers)
        assert response.status_code == 401 and "token" in response.json()["detail"]

    def test_robot_endpoints_need_an_admin_token(self, farm):
        client, store, _ = farm
        response = client.post("/api/robots/r0/poll", headers=auth(store.add_user("ada")), json={})
        assert response.status_code == 403


class TestUploads:
    def test_a_good_policy_queues(self, farm, tiny_bundle):
        client, store, _ = farm
        token = store.add_user("ada")
        response = _submit(client, token, tiny_bundle, episodes=3, seed=7)
        assert response.status_code == 201, response.text
        job = client.get(f"/api/jobs/{response.json()['job_id']}", headers=auth(token)).json()
        assert job["status"] == "queued" and job["settings"] == {"episodes": 3, "level": 1, "seed": 7,
                                                                 "policy_obs_type": "keypoints"}

    @pytest.mark.parametrize("case, status, message", [
        ("corrupt", 400, "not a valid ONNX"),
        ("truncated", 400, "not a valid ONNX"),
        ("empty", 400, "policy.onnx is empty"),
        ("metadata_not_json", 400, "not valid JSON"),
        ("metadata_incomplete", 422, "lacks"),
        ("misshaped", 422, "obs_size 41"),
        ("wrong_action_size", 422, "action_size"),
    ])
    def test_bad_uploads_get_a_4xx_naming_the_problem(self, farm, tiny_bundle, case, status, message):
        client, store, _ = farm
        onnx_bytes = (tiny_bundle / "policy.onnx").read_bytes()
        metadata = json.loads((tiny_bundle / "metadata.json").read_text())
        files = {
            "corrupt": lambda: upload_files(tiny_bundle, onnx_bytes=b"\x08\x07garbage" * 100),
            "truncated": lambda: upload_files(tiny_bundle, onnx_bytes=onnx_bytes[: len(onnx_bytes) // 2]),
            "empty": lambda: upload_files(tiny_bundle, onnx_bytes=b""),
            "metadata_not_json": lambda: upload_files(tiny_bundle, metadata=b"{not json"),
            "metadata_incomplete": lambda: upload_files(tiny_bundle, metadata={"obs_type": "keypoints"}),
            "misshaped": lambda: upload_files(tiny_bundle, metadata={**metadata, "obs_size": 41}),
            "wrong_action_size": lambda: upload_files(tiny_bundle, metadata={**metadata, "action_size": 12}),
        }[case]()
        response = client.post("/api/jobs", headers=auth(store.add_user("ada")), files=files)
        assert response.status_code == status, response.text
        assert message in response.json()["detail"]
        assert store.all_jobs() == [], "nothing queued"

    def test_oversized_upload_is_413(self, tmp_path, tiny_bundle):
        from fastapi.testclient import TestClient

        from trifinger_s2r.farm.api import FarmSettings, create_app

        settings = FarmSettings(db_url=f"sqlite:///{tmp_path / 'f.db'}", data_dir=tmp_path, max_upload_bytes=1000)
        client = TestClient(create_app(settings))
        token = client.app.state.store.add_user("ada")
        response = client.post("/api/jobs", headers=auth(token), files=upload_files(tiny_bundle))
        assert response.status_code == 413 and "limit is 1000 bytes" in response.json()["detail"]

    def test_bad_settings_are_422(self, farm, tiny_bundle):
        client, store, _ = farm
        token = store.add_user("ada")
        assert _submit(client, token, tiny_bundle, episodes=0).status_code == 422
        response = _submit(client, token, tiny_bundle, level=7)
        assert response.status_code == 422 and "level 7" in response.json()["detail"]

    @pytest.mark.parametrize("value, reason", [(float("nan"), "non-finite actions"), (1.0, "slams into the torque")])
    def test_the_simulation_precheck_rejects_with_its_reason(self, farm, tiny_bundle, tmp_path, value, reason):
        client, store, _ = farm
        bad = bundle_with_output(tiny_bundle, tmp_path, value)
        response = _submit(client, store.add_user("ada"), bad)
        assert response.status_code == 422 and reason in response.json()["detail"]
        assert store.all_jobs() == []


class TestVisibility:
    def test_another_users_job_is_404_everywhere(self, farm, tiny_bundle):
        client, store, _ = farm
        ada, bob = store.add_user("ada"), store.add_user("bob")
        job_id = _submit(client, ada, tiny_bundle).json()["job_id"]
        for path in (f"/api/jobs/{job_id}", f"/api/jobs/{job_id}/results", f"/api/jobs/{job_id}/files/report.json"):
            assert client.get(path, headers=auth(bob)).status_code == 404
        assert client.get("/api/jobs", headers=auth(bob)).json() == {"jobs": []}
        client.cookies.set("s2r_token", bob)
        assert client.get(f"/jobs/{job_id}").status_code == 404


class TestInProcessFarm:
    def test_a_worker_runs_the_job_and_results_come_back(self, farm, tiny_bundle, tmp_path):
        """The worker talks HTTP to the app (TestClient is an httpx client): assigned, run, uploaded, shown."""
        client, store, _ = farm
        token = store.add_user("ada")
        job_id = _submit(client, token, tiny_bundle, episodes=1).json()["job_id"]
        worker = FarmWorker(WorkerConfig(server_url="http://testserver", token=store.add_user("robots", admin=True),
                                         robot_name="sim-robot-0", work_dir=tmp_path / "w"), client=client)
        assert worker.run_once() and worker.jobs_done == 1
        assert worker.health == (True, "ok"), "the robot passes its between-jobs check"
        job = client.get(f"/api/jobs/{job_id}", headers=auth(token)).json()
        assert job["status"] == "succeeded" and job["robot"] == "sim-robot-0"
        assert {"success_rate", "ci80_low", "ci80_high"} <= set(job)
        archive = zipfile.ZipFile(BytesIO(client.get(f"/api/jobs/{job_id}/results", headers=auth(token)).content))
        assert {"report.json", "info.json", "errors.png", "video.mp4", "episode_000/log.npz"} <= set(archive.namelist())
        client.cookies.set("s2r_token", token)
        page = client.get(f"/jobs/{job_id}").text
        assert "errors.png" in page and "<video" in page and "succeeded" in page
        assert job_id[:12] in client.get("/").text

    def test_the_web_page_asks_for_a_token(self, farm):
        client, _, _ = farm
        response = client.get("/")
        assert response.status_code == 401 and "API token" in response.text


class TestRobotsAndWaiting:
    def _robot(self, store):
        return auth(store.add_user("robots", admin=True))

    def test_robots_are_listed_for_any_signed_in_user(self, farm):
        client, store, _ = farm
        robot = self._robot(store)
        client.post("/api/robots/r0/poll", headers=robot, json={"healthy": True, "message": "ok",
                                                                "info": {"pid": 42}})
        client.post("/api/robots/r1/poll", headers=robot, json={"healthy": False, "message": "unhealthy: cube lost"})
        assert client.get("/api/robots").status_code == 401
        robots = client.get("/api/robots", headers=auth(store.add_user("ada"))).json()["robots"]
        assert [(r["name"], r["status"], r["healthy"], r["health_message"]) for r in robots] == [
            ("r0", "free", True, "ok"), ("r1", "unhealthy", False, "unhealthy: cube lost")]
        assert robots[0]["info"] == {"pid": 42} and robots[0]["jobs_run"] == 0 and robots[0]["last_seen_at"]
        assert set(robots[0]) == {"name", "status", "healthy", "health_message", "online", "busy", "job_id",
                                  "last_seen_at", "seen_s_ago", "jobs_run", "jobs_succeeded", "jobs_failed", "info"}
        client.cookies.set("s2r_token", store.add_user("bob"))
        page = client.get("/robots").text
        assert "r0" in page and "unhealthy: cube lost" in page and "robot-unhealthy" in page

    def test_a_job_no_healthy_robot_can_take_says_so(self, farm, tiny_bundle):
        client, store, _ = farm
        robot = self._robot(store)
        token = store.add_user("ada")
        job_id = _submit(client, token, tiny_bundle).json()["job_id"]
        job = client.get(f"/api/jobs/{job_id}", headers=auth(token)).json()
        assert job["waiting_reason"] == "no healthy robot: no robot has connected to the farm yet"
        assert job["queue_position"] == 1
        poll = client.post("/api/robots/r0/poll", headers=robot, json={"healthy": False, "message": "cube lost"})
        assert poll.json() == {"job": None}
        listed = client.get("/api/jobs", headers=auth(token)).json()["jobs"][0]
        assert listed["waiting_reason"] == "no healthy robot: r0 unhealthy (cube lost)"
        client.cookies.set("s2r_token", token)
        assert "no healthy robot: r0 unhealthy (cube lost)" in client.get("/").text
        assert "no healthy robot: r0 unhealthy (cube lost)" in client.get(f"/jobs/{job_id}").text
        poll = client.post("/api/robots/r0/poll", headers=robot, json={"healthy": True, "message": "ok"})
        assert poll.json()["job"]["job_id"] == job_id
        job = client.get(f"/api/jobs/{job_id}", headers=auth(token)).json()
        assert job["status"] == "assigned" and job["waiting_reason"] is None

    def test_an_unhealthy_poll_hands_back_the_robots_job(self, farm, tiny_bundle):
        client, store, _ = farm
        robot = self._robot(store)
        token = store.add_user("ada")
        job_id = _submit(client, token, tiny_bundle).json()["job_id"]
        client.post("/api/robots/r0/poll", headers=robot, json={"healthy": True})
        client.post(f"/api/robots/r0/jobs/{job_id}/start", headers=robot, json={"run_id": "a"})
        client.post("/api/robots/r0/poll", headers=robot, json={"healthy": False, "message": "cube lost"})
        job = client.get(f"/api/jobs/{job_id}", headers=auth(token)).json()
        assert job["status"] == "queued" and job["events"][-1]["event"] == "released"
        assert job["events"][-1]["detail"] == "robot unhealthy: cube lost"

    def test_results_are_taken_once_per_job(self, farm, tiny_bundle, tmp_path):
        """The same run's upload again (its answer was lost) is answered as before; another run's is refused and
        its results do not replace the job's."""
        client, store, _ = farm
        robot = self._robot(store)
        token = store.add_user("ada")
        job_id = _submit(client, token, tiny_bundle).json()["job_id"]
        client.post("/api/robots/r0/poll", headers=robot, json={"healthy": True})
        assert client.post(f"/api/robots/r0/jobs/{job_id}/start", headers=robot, json={"run_id": "a"}).status_code \
            == 200

        def upload(run_id, rate):
            archive = BytesIO()
            with zipfile.ZipFile(archive, "w") as z:
                z.writestr("report.json", json.dumps({"success_rate": rate}))
            return client.post(f"/api/robots/r0/jobs/{job_id}/complete", headers=robot, data={"run_id": run_id},
                               files={"results": ("results.zip", archive.getvalue(), "application/zip")})

        assert upload("a", 0.5).status_code == 200
        assert upload("a", 0.5).status_code == 200, "a retried upload of the same run"
        assert upload("b", 0.9).status_code == 409, "another run of a finished job"
        job = client.get(f"/api/jobs/{job_id}", headers=auth(token)).json()
        assert job["status"] == "succeeded" and job["success_rate"] == 0.5
        assert [e["event"] for e in job["events"]][-2:] == ["succeeded", "complete_rejected"]
        report = client.get(f"/api/jobs/{job_id}/files/report.json", headers=auth(token)).json()
        assert report == {"success_rate": 0.5}

    def test_a_retried_submission_is_one_job_and_episode_length_is_a_setting(self, farm, tiny_bundle):
        client, store, _ = farm
        token = store.add_user("ada")
        first = _submit(client, token, tiny_bundle, request_id="req-1", episode_length=25).json()
        again = _submit(client, token, tiny_bundle, request_id="req-1", episode_length=25).json()
        assert first["job_id"] == again["job_id"] and len(store.all_jobs()) == 1
        assert store.job(first["job_id"]).settings["episode_length_steps"] == 25
        assert _submit(client, token, tiny_bundle, episode_length=0).status_code == 422
