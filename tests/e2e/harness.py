"""A real server and real Chromium for end-to-end tests and ``bench/e2e.py``.

The server runs in this process's event loop on a fixed loopback port (the page's
Origin must be in the allow-list, so the port is chosen before the settings are made).
Each party gets its own Chromium *process*, because the fake camera file is per
process. Debian's Chromium is driven by Playwright through ``executable_path``;
Playwright's own browser downloads are never used.

Media stays on 127.0.0.1: aioice leaves the loopback address out of its host candidates,
so for these runs the server's ICE gathering is given 127.0.0.1 only
(:func:`loopback_ice`, the one adapter here), and Chromium includes its loopback
candidate (``--allow-loopback-in-peer-connection``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from playwright.async_api import Browser, BrowserContext, Page, Playwright

from server import app_keys, kiosks
from server.accounts import ClerkSpec, create_clerk
from server.app import create_app
from server.citizen_tokens import mint
from server.http_support import token_policy
from server.settings import REPO_ROOT
from tests.conftest import make_settings

CHROMIUM = os.environ.get("XIAOWU_CHROMIUM", "/usr/bin/chromium")
PASSWORD = "Correct-horse-42"
ARTEFACTS = Path(os.environ.get("XIAOWU_E2E_ARTEFACTS", REPO_ROOT / "artefacts" / "e2e"))
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--allow-loopback-in-peer-connection",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    # The fake capture device runs on the test's clock, not the renderer's: keep
    # timers in background tabs and occluded windows running.
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
]


def chromium_missing() -> str | None:
    """Why Chromium cannot run here, or None."""
    if shutil.which(CHROMIUM) is None:
        return f"{CHROMIUM} not found (apt-get install chromium; ./scripts/test installs it)"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def loopback_ice() -> Iterator[None]:
    """aioice gathers host candidates on 127.0.0.1 only, for the duration."""
    from aioice import ice

    original = ice.get_host_addresses

    def loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return ["127.0.0.1"] if use_ipv4 else []

    ice.get_host_addresses = loopback
    try:
        yield
    finally:
        ice.get_host_addresses = original


@dataclass
class RunningServer:
    app: web.Application
    url: str

    async def add_clerk(self, username: str, display_name: str, *, role: str = "clerk",
                        skills: tuple[str, ...] = ("*",),
                        jurisdictions: tuple[str, ...] = ("370500",)) -> None:
        async with self.app[app_keys.DB].begin() as conn:
            await create_clerk(conn, ClerkSpec(username, display_name, "APR", role, skills,
                                               jurisdictions), PASSWORD, must_change=False)

    async def provision_url(self, hut_id: str = "dy-hall-01") -> str:
        async with self.app[app_keys.DB].begin() as conn:
            code = await kiosks.create_code(conn, hut_id, ttl=timedelta(hours=1))
        return f"{self.url}/kiosk/?provision={code}"

    def mobile_url(self, sub: str = "wx-e2e-1", name: str = "付宇航") -> str:
        token = mint(token_policy(self.app), sub, ttl_s=3600, name=name)
        return f"{self.url}/m/?t={token}"


@contextlib.asynccontextmanager
async def running_server(data_dir: Path, **overrides: Any) -> AsyncIterator[RunningServer]:
    port = free_port()
    # As deployed: the document workers start with the server, not at the first capture.
    overrides = {"capture_warm_start": True, **overrides}
    settings = make_settings(data_dir, host="127.0.0.1", port=port, **overrides)
    app = create_app(settings)
    runner = web.AppRunner(app, handle_signals=False, access_log=None,
                           shutdown_timeout=1.0)
    with loopback_ice():
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        try:
            yield RunningServer(app, f"http://127.0.0.1:{port}")
        finally:
            await runner.cleanup()


async def launch(playwright: Playwright, camera: Path) -> Browser:
    """One Chromium process whose camera plays ``camera`` (.y4m)."""
    return await playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True,
        args=[*CHROMIUM_FLAGS, f"--use-file-for-fake-video-capture={camera}"],
    )


async def new_page(browser: Browser, *, phone: bool = False) -> tuple[BrowserContext, Page]:
    if phone:
        context = await browser.new_context(viewport={"width": 390, "height": 844},
                                            device_scale_factor=2, is_mobile=True,
                                            has_touch=True, locale="zh-CN")
    else:
        context = await browser.new_context(viewport={"width": 1600, "height": 1000},
                                            locale="zh-CN")
    page = await context.new_page()
    return context, page


async def screenshot(page: Page, name: str) -> Path:
    await asyncio.to_thread(ARTEFACTS.mkdir, parents=True, exist_ok=True)
    path = ARTEFACTS / f"{name}.png"
    await page.screenshot(path=str(path))
    return path


FRAMES_JS = """
async ([selector, waitMs]) => {
  const video = document.querySelector(selector);
  if (!video) return {error: 'no element ' + selector};
  const before = video.getVideoPlaybackQuality().totalVideoFrames;
  const t0 = video.currentTime;
  await new Promise((resolve) => setTimeout(resolve, waitMs));
  return {
    frames: video.getVideoPlaybackQuality().totalVideoFrames - before,
    advanced: video.currentTime - t0,
    width: video.videoWidth, height: video.videoHeight,
    paused: video.paused, ready: video.readyState,
  };
}
"""


async def frames_advancing(page: Page, selector: str, wait_ms: int = 800) -> dict[str, Any]:
    """How many frames a <video> presented during ``wait_ms`` (and its size)."""
    result: dict[str, Any] = await page.evaluate(FRAMES_JS, [selector, wait_ms])
    return result


async def login(page: Page, username: str) -> None:
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("#login-form button[type=submit]")
