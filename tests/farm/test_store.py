"""The job store: hashed tokens, per-user visibility, random free robots, leases, no lost or doubled jobs."""

from __future__ import annotations

import datetime
import os
import random
import threading
import time
from collections import Counter

import pytest
from sqlalchemy import create_engine, text

from trifinger_s2r.farm.store import ASSIGNED, FAILED, QUEUED, RUNNING, SUCCEEDED, Base, JobStore, QueuePolicy


def _fresh_url(backend: str, tmp_path, name: str = "farm") -> str:
    """A store URL with no tables: SQLite in tmp_path, or the PostgreSQL of S2R_TEST_POSTGRES_URL, emptied."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / f'{name}.db'}"
    url = os.environ.get("S2R_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("S2R_TEST_POSTGRES_URL is not set (scripts/test.sh sets it where PostgreSQL can be started)")
    engine = create_engine(url)
    Base.metadata.drop_all(engine)
    engine.dispose()
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request):
    return request.param


@pytest.fixture
def store(backend, tmp_path):
    return JobStore(_fresh_url(backend, tmp_path), QueuePolicy(lease_s=0.3, max_attempts=2), rng=random.Random(0))


def _user(store, name="ada"):
    token = store.add_user(name)
    return store.user_for_token(token), token


class TestUsers:
    def test_tokens_are_stored_hashed(self, store):
        user, token = _user(store)
        assert user.name == "ada" and store.user_for_token("wrong") is None and store.user_for_token("") is None
        with store.engine.connect() as c:
            stored = c.execute(text("SELECT token_hash FROM users")).scalar()
        assert stored != token and token not in stored and len(stored) == 64

    def test_tokens_never_start_with_a_dash(self, store, monkeypatch):
        """A token like '-x...' would be read as a missing value in `--token TOKEN`; such draws are redrawn."""
        draws = iter(["-starts-with-a-dash", "fine-token"])
        monkeypatch.setattr("trifinger_s2r.farm.store.secrets.token_urlsafe", lambda _n: next(draws))
        assert store.add_user("ada") == "fine-token"

    def test_duplicate_names_are_refused(self, store):
        _user(store)
        with pytest.raises(ValueError, match="exists"):
            store.add_user("ada")

    def test_a_user_sees_only_their_jobs(self, store):
        ada, _ = _user(store, "ada")
        bob, _ = _user(store, "bob")
        job = store.submit(ada, {"episodes": 1})
        assert store.job(job.id, ada) is not None and store.job(job.id, bob) is None
        assert [j.id for j in store.jobs(ada)] == [job.id] and store.jobs(bob) == []


class TestQueue:
    def test_jobs_go_to_random_free_healthy_robots(self, store):
        for name in ("r0", "r1", "r2"):
            store.robot_seen(name, healthy=True)
        store.robot_seen("sick", healthy=False, message="cube not found")
        users = [_user(store, f"u{i}")[0] for i in range(3)]
        jobs = [store.submit(u, {}) for u in users]
        assert store.schedule() == 3
        robots = [store.job(j.id).robot for j in jobs]
        assert sorted(robots) == ["r0", "r1", "r2"], "one job per robot, never the unhealthy one"
        assert all(store.job(j.id).status == ASSIGNED for j in jobs)

    def test_the_choice_of_robot_is_random(self, backend, tmp_path):
        counts = Counter()
        for seed in range(30):
            store = JobStore(_fresh_url(backend, tmp_path, str(seed)), rng=random.Random(seed))
            for name in ("r0", "r1", "r2"):
                store.robot_seen(name, healthy=True)
            job = store.submit(_user(store)[0], {})
            store.schedule()
            counts[store.job(job.id).robot] += 1
        assert set(counts) == {"r0", "r1", "r2"}

    def test_one_active_job_per_user(self, store):
        store.robot_seen("r0", True)
        store.robot_seen("r1", True)
        ada, _ = _user(store)
        first, second = store.submit(ada, {}), store.submit(ada, {})
        store.schedule()
        assert store.job(first.id).status == ASSIGNED and store.job(second.id).status == QUEUED

    def test_life_cycle_and_ownership(self, store):
        store.robot_seen("r0", True)
        job = store.submit(_user(store)[0], {})
        store.schedule()
        assert not store.start(job.id, "r1"), "another robot cannot start it"
        assert store.start(job.id, "r0") and store.job(job.id).status == RUNNING
        assert store.heartbeat(job.id, "r0") and not store.heartbeat(job.id, "r1")
        assert store.finish(job.id, "r0", {"success_rate": 0.5, "ci80_low": 0.3, "ci80_high": 0.7})
        done = store.job(job.id)
        assert done.status == SUCCEEDED and done.as_dict()["success_rate"] == 0.5 and done.finished_at
        assert not store.heartbeat(job.id, "r0"), "a finished job tells its worker to stop"

    def test_a_lapsed_lease_requeues_then_fails_after_max_attempts(self, store):
        store.robot_seen("r0", True)
        job = store.submit(_user(store)[0], {})
        for attempt in (1, 2):
            store.robot_seen("r0", True)
            store.schedule()
            assert store.start(job.id, "r0") and store.job(job.id).attempts == attempt
            time.sleep(0.4)  # the worker died: no heartbeat
            store.expire_leases()
        final = store.job(job.id)
        assert final.status == FAILED and "stopped responding" in final.error

    def test_a_heartbeat_keeps_the_lease(self, store):
        store.robot_seen("r0", True)
        job = store.submit(_user(store)[0], {})
        store.schedule()
        store.start(job.id, "r0")
        for _ in range(4):
            time.sleep(0.15)
            assert store.heartbeat(job.id, "r0")
            store.expire_leases()
        assert store.job(job.id).status == RUNNING


class TestConcurrency:
    def test_concurrent_submissions_and_schedulers_lose_and_double_nothing(self, store):
        users = [_user(store, f"u{i}")[0] for i in range(50)]
        for i in range(10):
            store.robot_seen(f"r{i}", True)
        ids: list[str] = []
        lock = threading.Lock()

        def submit(user):
            job = store.submit(user, {})
            with lock:
                ids.append(job.id)

        threads = [threading.Thread(target=submit, args=(u,)) for u in users]
        threads += [threading.Thread(target=store.schedule) for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        store.schedule()
        jobs = store.all_jobs()
        assert len(ids) == len(set(ids)) == 50 and sorted(j.id for j in jobs) == sorted(ids)
        robots = [j.robot for j in jobs if j.status == ASSIGNED]
        assert len(robots) == 10 and len(set(robots)) == 10, "each robot got exactly one job"


class TestHistoryReleaseAndWaiting:
    def test_every_change_is_in_the_history_and_a_release_costs_no_attempt(self, store):
        store.robot_seen("r0", True)
        job = store.submit(_user(store)[0], {})
        store.schedule()
        assert store.start(job.id, "r0", run_id="run-1")
        assert store.start(job.id, "r0", run_id="run-2"), "a restarted worker starts its running job over"
        assert not store.release(job.id, "r1", "not mine")
        assert store.release(job.id, "r0", "its worker was stopped")
        requeued = store.job(job.id)
        assert requeued.status == QUEUED and requeued.robot is None and requeued.attempts == 0
        store.robot_seen("r0", True)
        store.schedule()
        store.start(job.id, "r0", run_id="run-3")
        assert store.finish(job.id, "r0", {}, run_id="run-3") and store.succeeded_run(job.id) == "run-3"
        events = store.events(job.id)
        assert [(e["event"], e["robot"]) for e in events] == [
            ("submitted", None), ("assigned", "r0"), ("started", "r0"), ("resumed", "r0"), ("released", "r0"),
            ("assigned", "r0"), ("started", "r0"), ("succeeded", "r0")]
        assert events[4]["detail"] == "its worker was stopped" and store.job(job.id).attempts == 1

    def test_an_unhealthy_robot_hands_back_what_it_holds(self, store):
        store.robot_seen("r0", True)
        jobs = [store.submit(_user(store, name)[0], {}) for name in ("ada", "bob")]
        store.schedule()
        assert store.release_robot("r0", "robot unhealthy: cube not found") == 1
        assert {store.job(j.id).status for j in jobs} == {QUEUED}

    def test_a_queued_job_says_why_it_waits(self, store):
        ada, _ = _user(store)
        first, second = store.submit(ada, {}), store.submit(ada, {})
        bob = store.submit(_user(store, "bob")[0], {})
        waiting = store.waiting([first])[first.id]
        assert waiting == {"waiting_reason": "no healthy robot: no robot has connected to the farm yet",
                           "queue_position": 1}
        store.robot_seen("r0", False, "unhealthy: fingers not at home after reset")
        store.robot_seen("r1", True)
        with store._session() as s:  # r1 was last heard from a minute ago
            s.execute(text("UPDATE robots SET last_seen_at = :t WHERE name = 'r1'"),
                      {"t": datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(seconds=60)})
        reason = store.waiting([bob])[bob.id]["waiting_reason"]
        assert reason == ("no healthy robot: r0 unhealthy (unhealthy: fingers not at home after reset); "
                          "r1 offline (last heard from 60 s ago)")
        store.robot_seen("r1", True)
        store.schedule()  # r1 takes ada's first job
        reasons = {k: v["waiting_reason"] for k, v in store.waiting(store.all_jobs()).items()}
        assert reasons[second.id] == f"waiting for your job {first.id[:12]} to finish (one active job per user)"
        assert reasons[bob.id] == "all 1 healthy robot(s) are busy; 1 queued job(s) ahead of it"
        assert first.id not in reasons, "only queued jobs wait"

    def test_a_resubmitted_request_finds_its_job(self, store):
        ada, _ = _user(store)
        bob, _ = _user(store, "bob")
        job = store.submit(ada, {}, request_id="req-1")
        assert store.submit(ada, {}, request_id="req-1").id == job.id
        assert store.submit(bob, {}, request_id="req-1").id != job.id, "request ids are per user"
        assert len(store.all_jobs()) == 2 and store.job_for_request(ada, "req-1").id == job.id

    def test_a_server_start_gives_running_jobs_a_full_lease(self, store):
        store.robot_seen("r0", True)
        job = store.submit(_user(store)[0], {})
        store.schedule()
        store.start(job.id, "r0")
        time.sleep(0.4)  # the lease (0.3 s) lapsed while no server answered
        assert store.grace_leases() == 1
        store.expire_leases()
        assert store.job(job.id).status == RUNNING

    def test_a_database_of_the_previous_version_is_migrated(self, backend, tmp_path):
        from sqlalchemy import MetaData, Table

        url = _fresh_url(backend, tmp_path, "old")
        engine = create_engine(url)
        old = MetaData()
        Base.metadata.tables["users"].to_metadata(old)
        Table("jobs", old, *[c.copy() for c in Base.metadata.tables["jobs"].columns if c.name != "request_id"])
        old.create_all(engine)
        with engine.begin() as c:
            c.execute(text("INSERT INTO users (name, token_hash, is_admin, created_at) "
                           "VALUES ('ada', 'h', false, CURRENT_TIMESTAMP)"))
            c.execute(text("INSERT INTO jobs (id, user_id, status, settings_json, attempts, created_at) "
                           "SELECT 'old-job', id, 'queued', '{}', 0, CURRENT_TIMESTAMP FROM users"))
        engine.dispose()
        store = JobStore(url)
        assert store.job("old-job").status == QUEUED
        bob = _user(store, "bob")[0]
        job = store.submit(bob, {}, request_id="r")
        assert store.submit(bob, {}, request_id="r").id == job.id
