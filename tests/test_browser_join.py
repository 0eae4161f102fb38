"""The join panel in a real browser: the app's server with a classroom address (KDLAB_PUBLIC_URL, as `kdlab serve
--host 0.0.0.0` sets it), Debian's Chromium through Playwright. The QR code is read back from the pixels the
browser shows, on the home page normal and presenter, 1440 and 1024 wide; screenshots go to artifacts/."""
from __future__ import annotations

import io
import os
import shutil
import sys
from pathlib import Path

import pytest

from conftest import APP_ROOT
from kdlab.serve.server import CHROMIUM, CHROMIUM_ARGS, running_server

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
from qr_decode import decode, matrix_from_pixels  # noqa: E402

pytestmark = pytest.mark.browser
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
CLASS_URL = "http://192.0.2.2:8501/"
SIZES = {"1440": {"width": 1440, "height": 1000}, "1024": {"width": 1024, "height": 768}}


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (os.path.exists(CHROMIUM) and shutil.which(CHROMIUM)):
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    env = {"KDLAB_CACHE_DIR": str(tmp_path_factory.mktemp("join-cache")), "KDLAB_PUBLIC_URL": CLASS_URL}
    with running_server(env=env) as srv, playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield srv, b
        finally:
            b.close()


def _square_svg_images(page):
    imgs = page.locator("img[src^='data:image/svg+xml']")
    boxes = [(imgs.nth(i), imgs.nth(i).bounding_box()) for i in range(imgs.count())]
    return [(img, box) for img, box in boxes if box and abs(box["width"] - box["height"]) < 2]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("mode", ["normal", "presenter"])
def test_the_join_code_on_screen_reads_as_the_classroom_address(browser, size, mode):
    from PIL import Image

    srv, b = browser
    page = b.new_page(viewport=SIZES[size])
    try:
        page.goto(f"{srv.url}/" + ("?present=1" if mode == "presenter" else ""))
        page.wait_for_selector(IDLE, timeout=60_000)
        page.get_by_text("Join the class").last.scroll_into_view_if_needed()
        page.wait_for_selector(IDLE, timeout=30_000)
        (APP_ROOT / "artifacts").mkdir(exist_ok=True)
        page.screenshot(path=str(APP_ROOT / "artifacts" / f"join-{mode}-{size}.png"))
        codes = _square_svg_images(page)
        assert len(codes) == 1, "one QR code on the home page"
        img, box = codes[0]
        assert box["width"] >= (240 if mode == "presenter" else 160)  # readable from a desk / the back of a room
        pixels = Image.open(io.BytesIO(img.screenshot())).convert("L")
        assert decode(matrix_from_pixels(pixels))["text"] == CLASS_URL
        assert page.get_by_text(CLASS_URL).count() >= 1  # the address, to type
    finally:
        page.close()
