"""The web page in headless Chromium (Debian's chromium driven by Playwright): sign in, jobs list, job detail,
robots."""

from __future__ import annotations

import shutil
import socket
import threading
import time

import httpx
import pytest

from tests.farm.conftest import auth, upload_files
from trifinger_s2r.farm.api import FarmSettings, create_app
from trifinger_s2r.farm.worker import FarmWorker, WorkerConfig

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


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


def test_sign_in_list_and_detail_in_headless_chromium(live_farm, tiny_bundle, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (scripts/test.sh installs it where it can)")
    url, store = live_farm
    token = store.add_user("ada")
    job_id = httpx.post(f"{url}/api/jobs", headers=auth(token), files=upload_files(tiny_bundle),
                        data={"episodes": "1"}, timeout=120).json()["job_id"]
    with httpx.Client(base_url=url, timeout=120) as client:
        FarmWorker(WorkerConfig(server_url=url, token=store.add_user("robots", admin=True), robot_name="sim-robot-0",
                                work_dir=tmp_path / "w"), client=client).run_once()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(url + "/")
        page.fill("#token", token)
        page.click("#sign-in")
        page.wait_for_selector("#jobs")
        row = page.locator("tr.job").first
        assert "succeeded" in row.inner_text() and "sim-robot-0" in row.inner_text()
        row.locator("a").click()
        page.wait_for_selector("#status")
        assert page.url.endswith(f"/jobs/{job_id}")
        assert page.inner_text("#status") == "succeeded" and page.inner_text("#robot") == "sim-robot-0"
        page.wait_for_function("document.querySelector('img[alt=\"errors.png\"]').naturalWidth > 0")
        assert page.locator("video").count() == 1
        page.screenshot(path=str(tmp_path / "job.png"))
        page.click("nav a[href='/robots']")
        page.wait_for_selector("#robots")
        robot = page.inner_text("#robot-sim-robot-0")
        assert "free" in robot and "ok" in robot and "1 (1 succeeded, 0 failed)" in robot
        browser.close()
