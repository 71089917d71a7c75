"""The excitation job: the farm (and `deploy --excitation`) run the scripted excitation instead of a policy and
return logs that `calibrate` reads."""

from __future__ import annotations

import io
import zipfile

from tests.farm.conftest import auth, farm  # noqa: F401 (the farm fixture)
from trifinger_s2r.calibration.logs import find_logs, read_log
from trifinger_s2r.cli import main
from trifinger_s2r.farm.worker import FarmWorker, WorkerConfig, calibration_for


def _user_and_robot(farm, tmp_path, index: int) -> tuple[str, FarmWorker]:  # noqa: F811
    """A user's token and simulated farm robot `index` (its own calibration) serving the test farm."""
    client, store, _ = farm
    worker = FarmWorker(WorkerConfig(server_url="http://testserver", token=store.add_user("robots", admin=True),
                                     robot_name=f"sim-robot-{index}", calibration=calibration_for(index),
                                     work_dir=tmp_path / "w", video=False), client=client)
    return store.add_user("ada"), worker


def test_a_farm_robot_runs_an_excitation_job_and_returns_calibration_logs(farm, tmp_path):  # noqa: F811
    """The job succeeds on a calibrated PyBullet robot; its results hold a log.npz that calibration reads."""
    client = farm[0]
    token, worker = _user_and_robot(farm, tmp_path, 1)
    response = client.post("/api/jobs/excitation", headers=auth(token), data={"episodes": "1", "seed": "3"})
    assert response.status_code == 201, response.text
    job_id = response.json()["job_id"]
    assert worker.run_once()
    job = client.get(f"/api/jobs/{job_id}", headers=auth(token)).json()
    assert job["status"] == "succeeded", job
    assert job["settings"]["kind"] == "excitation"
    archive = client.get(f"/api/jobs/{job_id}/results", headers=auth(token))
    zipfile.ZipFile(io.BytesIO(archive.content)).extractall(tmp_path / "results")
    (log,) = find_logs([tmp_path / "results"])
    assert read_log(log).camera_timestamp_per_step_s is not None


def test_deploy_excitation_needs_a_log_dir():
    """Without --log-dir there is nothing to keep: a one-line refusal."""
    try:
        main(["deploy", "--excitation", "--episodes", "1"])
    except SystemExit as err:
        assert "--log-dir is needed" in str(err)
    else:
        raise AssertionError("deploy --excitation without --log-dir ran")


def test_an_excitation_job_with_lifts_carries_the_cube(farm, tmp_path):  # noqa: F811
    """`lifts` reaches the robot: its log is the lifts' length longer and shows the cube well above the table; a
    count out of range is refused by name."""
    from trifinger_s2r.calibration.excitation import ExcitationConfig
    from trifinger_s2r.robot import cube

    client = farm[0]
    token, worker = _user_and_robot(farm, tmp_path, 0)
    refused = client.post("/api/jobs/excitation", headers=auth(token), data={"episodes": "1", "lifts": "-1"})
    assert refused.status_code == 422 and "lifts" in refused.text
    response = client.post("/api/jobs/excitation", headers=auth(token), data={"episodes": "1", "lifts": "1"})
    job_id = response.json()["job_id"]
    assert worker.run_once()
    job = client.get(f"/api/jobs/{job_id}", headers=auth(token)).json()
    assert job["status"] == "succeeded" and job["settings"]["lifts"] == 1
    archive = client.get(f"/api/jobs/{job_id}/results", headers=auth(token))
    zipfile.ZipFile(io.BytesIO(archive.content)).extractall(tmp_path / "results")
    (path,) = find_logs([tmp_path / "results"])
    log = read_log(path)
    assert len(log.timestamp_s) == round(ExcitationConfig(lifts=1).duration_s * 1000)
    assert log.object_position_m[:, 2].max() > cube.HALF_EDGE_M + 0.02


def test_deploy_excitation_refuses_a_negative_lift_count(tmp_path):
    try:
        main(["deploy", "--excitation", "--excitation-lifts", "-1", "--episodes", "1", "--log-dir", str(tmp_path)])
    except SystemExit as err:
        assert "lifts" in str(err)
    else:
        raise AssertionError("deploy --excitation-lifts -1 ran")
