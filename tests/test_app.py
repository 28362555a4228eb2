"""``textrestore app`` in a real browser: Debian's chromium driven by playwright.

The app runs the shipped model as its own process on a free local port; the browser
uploads a dark photo, enhances it once with a known prompt clicked ("much brighter") and
once with a typed prompt ("keep the night mood"), downloads both results and checks they
differ in the direction the words ask. The app is stopped at
the end, also when the test fails.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gradio")
playwright_sync = pytest.importorskip("playwright.sync_api")
CHROMIUM = "/usr/bin/chromium"
if not Path(CHROMIUM).is_file():
    pytest.skip(f"no browser at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)

from PIL import Image  # noqa: E402

from textrestore.data import read_image_array, write_image  # noqa: E402

ASSETS = Path(__file__).resolve().parents[1] / "src/textrestore/assets"
BROWSER_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run",
]  # fmt: skip


def _dark_photo(path: Path) -> np.ndarray:
    photo = sorted(p for p in ASSETS.iterdir() if p.suffix.lower() in (".jpg", ".png"))[0]
    img = Image.fromarray(read_image_array(photo)).resize((128, 96))
    dark = (np.asarray(img, dtype=np.float32) / 255.0) * 0.15
    write_image(path, dark)
    return dark


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(url: str, proc: subprocess.Popen, seconds: float = 240.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"the app did not answer at {url} within {seconds} s")


@pytest.mark.slow
def test_app_in_a_real_browser(tmp_path: Path) -> None:
    photo = tmp_path / "dark.png"
    _dark_photo(photo)
    # The shipped model, trained on language-labelled targets: the words decide the direction.
    bright_prompt, dark_prompt = "much brighter", "keep the night mood"
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1",
           "NO_PROXY": "127.0.0.1,localhost"}  # fmt: skip
    log = open(tmp_path / "app.log", "w")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(
        [sys.executable, "-m", "textrestore.cli", "app", "--port", str(port), "--device", "cpu"],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
    )  # fmt: skip
    try:
        _wait_for(url, proc)
        with playwright_sync.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 1000})
                page.goto(url)
                # Gradio attaches its upload handler after the page loads: an upload set
                # before that is dropped (seen once in CI), so wait for the network to
                # settle and retry the upload until its name shows.
                page.wait_for_load_state("networkidle")
                for attempt in range(3):
                    page.locator("#photos input[type=file]").set_input_files(str(photo))
                    # The upload must have landed before Enhance is clicked.
                    try:
                        page.locator("#photos").get_by_text(photo.name).first.wait_for(
                            timeout=40_000
                        )
                        break
                    except playwright_sync.TimeoutError:
                        if attempt == 2:
                            raise
                results = {}
                for how, prompt in (("click", bright_prompt), ("type", dark_prompt)):
                    box = page.locator("#prompt textarea")
                    if how == "click":
                        page.get_by_role("button", name=prompt, exact=True).click()
                    else:
                        box.fill(prompt)
                    playwright_sync.expect(box).to_have_value(prompt, timeout=60_000)
                    page.locator("#enhance").click()
                    page.locator("#status").get_by_text(f"prompt '{prompt}'").wait_for(
                        timeout=180_000
                    )
                    link = page.locator("#downloads a[href]").first
                    link.wait_for(timeout=60_000)
                    body = page.request.get(link.get_attribute("href")).body()
                    results[prompt] = np.asarray(Image.open(io.BytesIO(body)).convert("RGB"))
                page.screenshot(path=str(tmp_path / "app.png"), full_page=True)
            finally:
                browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    assert (tmp_path / "app.png").stat().st_size > 0
    bright, darkened = results[bright_prompt], results[dark_prompt]
    assert bright.shape == darkened.shape == (96, 128, 3)
    assert bright.mean() > darkened.mean() + 1.0, (bright.mean(), darkened.mean())
    if os.environ.get("TEXTRESTORE_APP_SCREENSHOT"):
        shutil.copy(tmp_path / "app.png", os.environ["TEXTRESTORE_APP_SCREENSHOT"])
