"""The web UI in a real headless Chromium (Debian's /usr/bin/chromium through Playwright).

One ``vitron web`` server (tiny profile, a rule-based planner that streams word by word) serves the
module's tests; each test opens its own conversation. Screenshots go to the test's tmp_path and are
copied to ``test-artifacts/web/`` (ignored by git); the folder is printed.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from PIL import Image

from tests.graphs.dev_server import free_port, serving

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts" / "web"
MAX_UPLOAD_MB = 0.05  # 50 KB: the oversized test uploads a little more

pytestmark = [
    pytest.mark.heavy,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's chromium is not installed (apt-get install chromium; .ci/run does)",
    ),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``vitron web`` on a free loopback port; yields its URL."""
    folder = tmp_path_factory.mktemp("web")
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONPATH": str(ROOT),
           "HF_HUB_OFFLINE": "1", "GRADIO_SERVER_NAME": "127.0.0.1"}  # fmt: skip
    command = [sys.executable, "-m", "vitron.apps.cli", "web", "--port", str(port),
               "--profile", "tiny", "--device", "cpu", "--workspace", str(folder / "ws"),
               "--planner", "tests.apps.scripted_planners:web_planner",
               "--max-upload-mb", str(MAX_UPLOAD_MB)]  # fmt: skip
    log_path = folder / "server.log"
    url = f"http://127.0.0.1:{port}/"
    with serving(command, url, log_path, env, timeout=120):
        yield url
    print(f"web server log: {log_path}")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM))
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, tmp_path, request):
    """A fresh page that records every request; asserts afterwards that none left localhost."""
    context = browser.new_context(viewport={"width": 1280, "height": 1100})
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.shots = []  # type: ignore[attr-defined]

    def shot(name: str) -> None:
        path = tmp_path / f"{request.node.name}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        page.shots.append(path)  # type: ignore[attr-defined]

    page.shot = shot  # type: ignore[attr-defined]
    yield page
    context.close()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for path in page.shots:  # type: ignore[attr-defined]
        shutil.copy(path, ARTIFACTS / path.name)
    print(f"screenshots: {tmp_path} (copied to {ARTIFACTS})")
    outside = {urlparse(u).hostname for u in requested} - {"127.0.0.1", "localhost", None}
    outside.discard("")
    assert not outside, f"the page reached outside this machine: {sorted(outside)}"


def picture_file(folder: Path, size: int = 96) -> Path:
    image = np.full((size, size, 3), 235, dtype=np.uint8)
    image[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = (40, 60, 200)
    path = folder / "square.png"
    Image.fromarray(image).save(path)
    return path


def open_app(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("#editor .zoom-number span", timeout=30_000)
    page.wait_for_function("() => new URL(location).searchParams.get('thread')", timeout=15_000)


def upload_and_sketch(page, path: Path) -> None:
    zoom = page.locator("#editor .zoom-number span")
    before = zoom.inner_text()
    page.locator("#editor input[type=file]").first.set_input_files(str(path))
    page.wait_for_function(
        "(b) => (document.querySelector('#editor .zoom-number span')?.innerText || b) !== b",
        arg=before, timeout=15_000,
    )  # fmt: skip
    canvas = page.locator("#editor canvas").first.bounding_box()
    cx, cy = canvas["x"] + canvas["width"] / 2, canvas["y"] + canvas["height"] / 2
    scale = float(zoom.inner_text().strip().rstrip("%")) / 100
    page.mouse.move(cx - 12 * scale, cy - 12 * scale)
    page.mouse.down()
    page.mouse.move(cx + 12 * scale, cy - 8 * scale, steps=2)
    page.mouse.move(cx + 8 * scale, cy + 12 * scale, steps=2)
    page.mouse.up()


def upload_file(page, path: Path) -> None:
    """Upload through the file box and wait until the upload has finished.

    While uploading, Gradio shows "Uploading 1 file... square.png"; once done, the file's row
    splits the name into stem and extension (its text reads "square\\n.png") and carries the
    whole name as its ``aria-label``. So wait on the label: a text match on the name would only
    catch the transient "Uploading" line, and miss a fast upload altogether.
    """
    page.locator("#upload input[type=file]").set_input_files(str(path))
    page.wait_for_selector(f'#upload [aria-label="{path.name}"]', timeout=30_000)


def send(page, text: str) -> None:
    page.locator("#message textarea").fill(text)
    page.locator("#send").click()


def wait_idle(page, download: str | None = None) -> None:
    """Until the turn is over (no progress line) and, if given, a download's name shows."""
    page.wait_for_function(
        "(d) => !(document.querySelector('#progress')?.innerText || '').trim()"
        " && (!d || (document.querySelector('#downloads')?.innerText || '').includes(d))",
        arg=download, timeout=30_000,
    )  # fmt: skip


def chat_text(page) -> str:
    return page.locator("#chat").inner_text()


def test_sketch_segment_overlay_streamed_answer_and_history_after_reload(server, page, tmp_path):
    open_app(page, server)
    upload_and_sketch(page, picture_file(tmp_path))
    page.shot("1-sketch")
    send(page, "segment this")
    page.wait_for_function(  # the streamed answer, complete
        "() => /Here is the result of segment_image: mask_[0-9a-f]+, img_[0-9a-f]+[.]/"
        ".test(document.querySelector('#chat')?.innerText || '')",
        timeout=60_000,
    )
    wait_idle(page, "mask_")
    text = chat_text(page)
    assert "segment this" in text and "segment_image" in text
    assert "Here is the result of segment_image: mask_" in text
    overlays = page.locator("#chat img")
    assert overlays.count() >= 2  # the user's picture and the overlay segment_image made
    page.shot("2-overlay-and-answer")

    thread = page.evaluate("() => new URL(location).searchParams.get('thread')")
    page.reload()
    page.wait_for_function(
        "() => (document.querySelector('#chat')?.innerText || '').includes('Here is the result of')",
        timeout=30_000,
    )
    assert page.evaluate("() => new URL(location).searchParams.get('thread')") == thread
    assert "segment this" in chat_text(page)
    assert page.locator("#chat img").count() >= 2
    assert thread in page.locator("#threads").inner_html()  # listed among the conversations
    page.shot("3-after-reload")


def test_an_oversized_upload_is_refused_in_the_chat(server, page, tmp_path):
    open_app(page, server)
    noise = np.random.default_rng(0).integers(0, 255, (160, 160, 3), dtype=np.uint8)
    big = tmp_path / "big.png"
    Image.fromarray(noise).save(big)
    assert big.stat().st_size > MAX_UPLOAD_MB * 1024 * 1024
    upload_file(page, big)
    send(page, "what is this?")
    page.wait_for_function(
        "() => (document.querySelector('#chat')?.innerText || '').includes('too large')",
        timeout=30_000,
    )
    text = chat_text(page)
    assert "big.png is too large" in text and "the limit is 51 KB" in text
    assert "Traceback" not in text
    page.shot("oversized")


def test_reject_an_edit_then_approve_the_next_with_the_buttons(server, page, tmp_path):
    open_app(page, server)
    upload_file(page, picture_file(tmp_path, 48))
    send(page, "recolor the square")
    page.wait_for_selector("#approval-question >> text=Run edit_image(", timeout=60_000)
    assert "prompt='blue'" in page.locator("#approval-question").inner_text()
    page.shot("1-approval-asked")
    page.locator("#approval-reason textarea").fill("not now")
    page.locator("#reject").click()
    page.wait_for_function(
        "() => (document.querySelector('#chat')?.innerText || '').includes('did not run edit_image this time.')",
        timeout=60_000,
    )
    wait_idle(page)
    assert "✗ edit_image failed: The user rejected this call to edit_image: not now" in chat_text(
        page
    )
    page.shot("2-rejected")

    send(page, "make it blue")
    page.wait_for_selector("#approval-question >> text=Run edit_image(", timeout=60_000)
    page.locator("#approve").click()
    page.wait_for_function(
        "() => (document.querySelector('#chat')?.innerText || '').includes('result of edit_image')",
        timeout=90_000,
    )
    wait_idle(page, "img_")
    downloads = page.locator("#downloads").inner_text()
    assert downloads.count("img_") == 1  # only the approved edit made a picture
    page.shot("3-approved")
