"""A matter carried by real pages in real Chromium: booth, clerk console, supervisor.

The booth and the clerk each run in their own Chromium process with their own fake
camera (an identity card on a desk; a clerk). Media goes through the server's media
endpoint on 127.0.0.1. Video is judged by frames being presented, not by fps.
"""

from __future__ import annotations

import pytest
from playwright.async_api import Dialog, Page, Playwright, expect

from tests.e2e import harness
from tests.e2e.conftest import Cameras
from tests.e2e.harness import RunningServer, frames_advancing, screenshot

pytestmark = pytest.mark.browser
TEACHER = "EDU-TQ-CONFIRM"
PLAYING = "(sel) => { const v = document.querySelector(sel); " \
          "return !!v && v.getVideoPlaybackQuality().totalVideoFrames > 2; }"


async def wait_playing(page: Page, selector: str) -> None:
    """The <video> presents frames, and keeps presenting them."""
    await page.wait_for_function(PLAYING, arg=selector, timeout=15_000)
    seen = await frames_advancing(page, selector, 700)
    assert seen["frames"] >= 3, (selector, seen)
    assert seen["width"] == 640 and seen["height"] == 480, (selector, seen)


def accept_dialogs(page: Page) -> None:
    async def accept(dialog: Dialog) -> None:
        await dialog.accept()
    page.on("dialog", accept)


async def kiosk_joins(kiosk: Page, server: RunningServer, matter: str = TEACHER) -> None:
    await kiosk.goto(await server.provision_url())
    await kiosk.click(f".matter[data-code='{matter}']")
    await kiosk.click("#join")
    await expect(kiosk.locator("[data-screen=queue]")).to_be_visible()


async def console_signs_in(console: Page, server: RunningServer, username: str,
                           *, available: bool = True) -> None:
    await console.goto(f"{server.url}/console/")
    await harness.login(console, username)
    await expect(console.locator("#presence-state")).to_have_attribute("data-state", "offline")
    if available:
        await console.click("#go-available")
        await expect(console.locator("#presence-state")).to_have_attribute("data-state",
                                                                           "available")


async def test_a_matter_from_the_booth_to_the_clerk_and_back(
    server: RunningServer, playwright: Playwright, cameras: Cameras,
) -> None:
    await server.add_clerk("wangli", "王丽")
    await server.add_clerk("zhangzhuren", "张主任", role="supervisor")
    kiosk_browser = await harness.launch(playwright, cameras.document)
    clerk_browser = await harness.launch(playwright, cameras.face)
    _, kiosk = await harness.new_page(kiosk_browser)
    _, console = await harness.new_page(clerk_browser)
    _, board = await harness.new_page(clerk_browser)
    accept_dialogs(console)

    # The booth: categories, search, English, the materials checklist.
    await kiosk.goto(await server.provision_url())
    await expect(kiosk.locator(f".matter[data-code='{TEACHER}']")).to_be_visible()
    assert "provision" not in kiosk.url
    await screenshot(kiosk, "kiosk-1-home")
    await kiosk.fill("#search", "教师资格")
    names = await kiosk.locator(".matter .name").all_inner_texts()
    assert names and all("教师资格" in name for name in names)
    await kiosk.click("#lang")
    await expect(kiosk.locator("[data-screen=home] h1")).to_have_text(
        "Choose what you need to do")
    await kiosk.click("#lang")
    await kiosk.click(f".matter[data-code='{TEACHER}']")
    materials = kiosk.locator("#materials li")
    await expect(materials).to_have_count(6)
    await expect(kiosk.locator("#materials li.required")).to_have_count(5)
    await screenshot(kiosk, "kiosk-2-materials")

    # Nobody available yet: the citizen waits, the supervisor sees it and pauses it.
    await console_signs_in(console, server, "wangli", available=False)
    await board.goto(f"{server.url}/supervisor/")
    await harness.login(board, "zhangzhuren")
    await kiosk.click("#join")
    await expect(kiosk.locator("#position")).to_have_text("下一位就是您")
    await expect(kiosk.locator("#estimate")).to_have_text("暂无可用工作人员")
    await screenshot(kiosk, "kiosk-3-queue")
    row = board.locator(f"#queues tr[data-code='{TEACHER}']")
    await expect(row.locator("td").nth(1)).to_have_text("1")
    await row.locator("button[data-action=pause]").click()
    await expect(kiosk.locator("#queue-note")).to_contain_text("暂停")
    await screenshot(board, "supervisor-1-paused")
    await row.locator("button[data-action=resume]").click()
    await expect(kiosk.locator("#queue-note")).to_have_text("")
    await expect(board.locator("#clerks tr[data-clerk=wangli] .state")).to_have_attribute(
        "data-state", "offline")

    # The clerk takes citizens: an offer with a countdown, accepted with Enter.
    await console.click("#go-available")
    await expect(console.locator("#offer")).to_be_visible()
    await expect(console.locator("#offer-matter")).to_have_text("高级中学教师资格认定确认")
    await expect(console.locator("#offer-countdown")).to_contain_text("秒")
    assert await console.evaluate("window.xiaowu.alert.rang") >= 1
    await screenshot(console, "console-1-offer")
    await console.keyboard.press("Enter")

    # Both see the other's video playing; the clerk also sees the document camera.
    await expect(kiosk.locator("#consent")).to_be_visible()
    await kiosk.click("#consent-yes")
    await wait_playing(kiosk, "#remote-video")
    await wait_playing(console, "#citizen-face")
    await wait_playing(console, "#citizen-doc")
    await expect(console.locator("#call-state")).to_have_attribute("data-key", "call_active")
    await expect(kiosk.locator("#clerk-name")).to_have_text("工作人员：王丽")
    await expect(kiosk.locator("#doc-prompt")).to_have_attribute("data-code", "ok")
    await screenshot(kiosk, "kiosk-4-call")
    await screenshot(console, "console-2-call")

    # The clerk's ID check catches a typo while the citizen is still there.
    await console.fill("#id-number", "11010519491231002X")
    await expect(console.locator("#id-hint")).to_have_attribute("data-verdict", "ok")
    await console.fill("#id-number", "110105194912310021")
    await expect(console.locator("#id-hint")).to_have_attribute("data-verdict", "check_digit")

    # The clerk ends the call: wrap-up on the console, rating at the booth.
    await console.click("#end-failed")
    await expect(console.locator("#wrapup")).to_be_visible()
    await screenshot(console, "console-3-wrapup")
    await expect(kiosk.locator("[data-screen=rating]")).to_be_visible()
    await kiosk.click(".star[data-score='5']")
    await kiosk.fill("#reason", "工作人员很耐心")
    await screenshot(kiosk, "kiosk-5-rating")
    await kiosk.click("#skip")
    await expect(kiosk.locator("[data-screen=done]")).to_be_visible()
    await kiosk.click("#restart")

    # Nothing of this citizen remains on the booth.
    await expect(kiosk.locator("[data-screen=home]")).to_be_visible()
    assert await kiosk.evaluate("sessionStorage.getItem('xw:citizen:state')") is None
    assert await kiosk.locator("#reason").input_value() == ""
    assert await kiosk.evaluate("document.querySelector('#remote-video').srcObject") is None
    await expect(console.locator("#presence-state")).to_have_attribute("data-state",
                                                                       "available")
    await expect(board.locator("#clerks tr[data-clerk=wangli] td.num")).to_have_text("1")
    await screenshot(board, "supervisor-2-after")
    await kiosk_browser.close()
    await clerk_browser.close()
