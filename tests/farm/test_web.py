"""The web pages: sign in by a POST form (the token never in a URL; the cookie HttpOnly, SameSite, Secure over
HTTPS), a wrong token said so, the upload form (CSRF-protected, the API's validation), the job page (numbers in
units, per-episode rows, refreshing until the job ends); and the whole flow in headless Chromium (Debian's chromium
driven by Playwright): sign in, upload, watch the job finish, the video plays, the robots page."""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time

import pytest
from fastapi.testclient import TestClient

from tests.farm.conftest import auth, upload_files
from trifinger_s2r.farm.api import TOKEN_COOKIE, FarmSettings, create_app, csrf_token
from trifinger_s2r.farm.worker import FarmWorker, WorkerConfig

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _signed_in(client: TestClient, token: str) -> str:
    """Sign in through the form; the page's CSRF token."""
    response = client.post("/sign-in", data={"token": token}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/"
    return re.search(r"name='csrf' value='([0-9a-f]+)'", client.get("/").text).group(1)


class TestSignIn:
    def test_sign_in_is_a_post_and_the_cookie_is_httponly_and_samesite(self, farm):
        client, store, _ = farm
        token = store.add_user("ada")
        page = client.get("/")
        assert page.status_code == 401 and "method='post' action='/sign-in'" in page.text
        response = client.post("/sign-in", data={"token": token}, follow_redirects=False)
        cookie = response.headers["set-cookie"]
        assert response.status_code == 303 and response.headers["location"] == "/"
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
        assert "Jobs of ada" in client.get("/").text

    def test_the_cookie_is_secure_over_https(self, farm):
        _, store, settings = farm
        client = TestClient(create_app(settings, store), base_url="https://farm.example")
        cookie = client.post("/sign-in", data={"token": store.add_user("ada")}, follow_redirects=False)
        assert "Secure" in cookie.headers["set-cookie"]

    def test_a_wrong_token_says_so_and_a_token_in_the_url_signs_nobody_in(self, farm):
        client, store, _ = farm
        token = store.add_user("ada")
        response = client.post("/sign-in", data={"token": "not-a-token"})
        assert response.status_code == 401 and "Wrong token" in response.text and "set-cookie" not in response.headers
        response = client.get(f"/?token={token}", follow_redirects=False)
        assert response.status_code == 401 and "set-cookie" not in response.headers
        response = client.post("/sign-in", data={"token": token}, headers={"Origin": "https://evil.example"})
        assert response.status_code == 403 and "set-cookie" not in response.headers

    def test_sign_out_needs_the_csrf_token(self, farm):
        client, store, _ = farm
        csrf = _signed_in(client, store.add_user("ada"))
        assert client.post("/sign-out", data={"csrf": "forged"}).status_code == 403
        assert client.post("/sign-out", data={"csrf": "é"}).status_code == 403
        assert client.post("/sign-out", data={"csrf": csrf}, follow_redirects=False).status_code == 303
        client.cookies.delete(TOKEN_COOKIE)  # the answer deleted it; the test client keeps its own jar
        assert client.get("/").status_code == 401


class TestUploadForm:
    def test_the_form_queues_a_job_through_the_apis_path(self, farm, tiny_bundle):
        client, store, _ = farm
        token = store.add_user("ada")
        csrf = _signed_in(client, token)
        assert csrf == csrf_token(token)
        response = client.post("/jobs", files=upload_files(tiny_bundle), follow_redirects=False, data={
            "csrf": csrf, "episodes": "3", "level": "2", "seed": "7", "episode_length": "40"})
        assert response.status_code == 303, response.text
        job_id = response.headers["location"].removeprefix("/jobs/")
        job = client.get(f"/api/jobs/{job_id}").json()
        assert job["status"] == "queued" and job["queue_position"] == 1
        assert job["settings"] == {"episodes": 3, "level": 2, "seed": 7, "policy_obs_type": "keypoints",
                                   "episode_length_steps": 40}
        page = client.get(f"/jobs/{job_id}").text
        assert "http-equiv='refresh'" in page and "place in the queue" in page and "#1 in the queue" in \
            client.get("/").text

    def test_without_the_csrf_token_or_from_another_site_it_is_refused(self, farm, tiny_bundle):
        client, store, _ = farm
        csrf = _signed_in(client, store.add_user("ada"))
        assert client.post("/jobs", files=upload_files(tiny_bundle), data={"episodes": "1"}).status_code == 403
        assert client.post("/jobs", files=upload_files(tiny_bundle), data={"csrf": "0" * 64}).status_code == 403
        response = client.post("/jobs", files=upload_files(tiny_bundle), data={"csrf": csrf},
                               headers={"Origin": "https://evil.example"})
        assert response.status_code == 403 and "cross-site" in response.text
        assert client.get("/api/jobs").json()["jobs"] == []

    def test_a_refused_upload_shows_the_reason_on_the_page(self, farm, tiny_bundle):
        client, store, _ = farm
        csrf = _signed_in(client, store.add_user("ada"))
        response = client.post("/jobs", files=upload_files(tiny_bundle, onnx_bytes=b"not onnx"),
                               data={"csrf": csrf})
        assert response.status_code == 400 and "Not submitted: policy.onnx is not a valid ONNX model" in response.text
        response = client.post("/jobs", files=upload_files(tiny_bundle), data={"csrf": csrf, "episodes": "0"})
        assert response.status_code == 422 and "episodes must be 1 to 200" in response.text
        assert client.get("/api/jobs").json()["jobs"] == []


def test_the_job_page_formats_numbers_and_lists_each_episode(farm, tiny_bundle, tmp_path):
    client, store, _ = farm
    token = store.add_user("ada")
    job_id = client.post("/api/jobs", headers=auth(token), files=upload_files(tiny_bundle),
                         data={"episodes": "2", "episode_length": "10"}).json()["job_id"]
    FarmWorker(WorkerConfig(server_url="http://testserver", token=store.add_user("robots", admin=True),
                            robot_name="sim-robot-0", work_dir=tmp_path / "w", video=False), client=client).run_once()
    job = client.get(f"/api/jobs/{job_id}", headers=auth(token)).json()
    page = client.get(f"/jobs/{job_id}", headers=auth(token)).text
    assert job["status"] == "succeeded" and "http-equiv='refresh'" not in page
    assert f"<td id='success_rate'>{job['success_rate']:.0%}</td>" in page
    assert f"{job['mean_position_error_m'] * 100:.1f} cm" in page and "°</td>" in page
    rows = re.findall(r"<tr class='episode'>(.*?)</tr>", page)
    assert len(rows) == 2 and all("cm" in r and "°" in r for r in rows)
    assert f"href='/api/jobs/{job_id}/files/episode_001/log.npz'" in rows[1]


@pytest.fixture
def live_farm(tmp_path):
    uvicorn = pytest.importorskip("uvicorn")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(FarmSettings(db_url=f"sqlite:///{tmp_path / 'farm.db'}", data_dir=tmp_path / "data"))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", app.state.store
    server.should_exit = True
    thread.join(timeout=10)


VIDEO_PLAYS = """async () => {
    const video = document.querySelector('video');
    video.muted = true;
    if (video.readyState < 1) {
        await new Promise((resolve) => {
            video.addEventListener('loadedmetadata', resolve, {once: true});
            video.addEventListener('error', resolve, {once: true});
        });
    }
    let played = null;
    try {
        await video.play();
        await new Promise((resolve) => setTimeout(resolve, 300));
        played = video.currentTime;
    } catch (err) {
        played = String(err);
    }
    return {duration: video.duration, error: video.error && video.error.code, width: video.videoWidth,
            ready: video.readyState, played: played};
}"""


def test_sign_in_upload_watch_and_play_in_headless_chromium(live_farm, tiny_bundle, tmp_path):
    """Issue 13: a wrong token says so; the right one signs in by POST; the policy is uploaded through the form;
    the job page follows it from queued to succeeded by itself; its video plays; the robots page; no URL the
    browser asked for carries the token."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (scripts/test.sh installs it where it can)")
    url, store = live_farm
    token = store.add_user("ada")
    stop = threading.Event()
    worker = FarmWorker(WorkerConfig(server_url=url, token=store.add_user("robots", admin=True),
                                     robot_name="sim-robot-0", work_dir=tmp_path / "w", poll_interval_s=0.2))
    thread = threading.Thread(target=worker.run_forever, args=(stop,), daemon=True)
    thread.start()
    urls: list[str] = []
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.on("request", lambda request: urls.append(request.url))
            page.goto(url + "/")
            page.fill("#token", "wrong-token")
            page.click("#sign-in")
            assert "Wrong token" in page.inner_text("#sign-in-error")
            page.fill("#token", token)
            page.click("#sign-in")
            page.wait_for_selector("#upload")
            cookie = next(c for c in page.context.cookies() if c["name"] == TOKEN_COOKIE)
            assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
            page.set_input_files("#policy", str(tiny_bundle / "policy.onnx"))
            page.set_input_files("#metadata", str(tiny_bundle / "metadata.json"))
            page.fill("#episodes", "1")
            page.fill("#episode_length", "25")
            page.click("#submit")
            page.wait_for_url(re.compile(r"/jobs/[0-9a-f]+$"), timeout=120_000)
            job_id = page.url.rsplit("/", 1)[1]
            seen = set()
            deadline = time.monotonic() + 240
            while (status := page.inner_text("#status")) not in ("succeeded", "failed"):
                seen.add(status)
                assert time.monotonic() < deadline, f"job stuck: {status}"
                page.wait_for_timeout(300)  # the page reloads itself
            assert status == "succeeded", page.inner_text("#facts")
            assert seen & {"queued", "assigned", "running"}
            assert page.inner_text("#robot") == "sim-robot-0" and page.inner_text("#success_rate").endswith("%")
            assert page.locator("tr.episode").count() == 1 and "log.npz" in page.inner_text("tr.episode")
            page.wait_for_function("document.querySelector('img[alt=\"errors.png\"]').naturalWidth > 0")
            video = page.evaluate(VIDEO_PLAYS)
            assert video["error"] is None and video["duration"] > 0 and video["width"] > 0, video
            assert video["ready"] >= 2 and isinstance(video["played"], (int, float)) and video["played"] > 0, video
            page.screenshot(path=str(tmp_path / "job.png"), full_page=True)
            page.click("nav a[href='/']")
            row = page.locator("tr.job").first
            assert job_id[:12] in row.inner_text() and "succeeded" in row.inner_text()
            page.click("nav a[href='/robots']")
            robot = page.inner_text("#robot-sim-robot-0")
            assert "free" in robot and "ok" in robot and "s ago" in robot and "1 (1 succeeded, 0 failed)" in robot
            browser.close()
    finally:
        stop.set()
        thread.join(timeout=60)
    assert urls and not [u for u in urls if token in u]
