"""What goes wrong in a day at the counter, in real Chromium: a clerk declines, a booth's
page is reloaded in the middle of a call."""

from __future__ import annotations

import pytest
from playwright.async_api import Playwright, expect

from tests.e2e import harness
from tests.e2e.conftest import Cameras
from tests.e2e.harness import RunningServer, screenshot
from tests.e2e.test_call_flow import console_signs_in, kiosk_joins, wait_playing

pytestmark = pytest.mark.browser


async def test_a_declined_offer_goes_to_the_second_clerk(
    server: RunningServer, playwright: Playwright, cameras: Cameras,
) -> None:
    await server.add_clerk("wangli", "王丽")
    await server.add_clerk("liuqiang", "刘强")
    kiosk_browser = await harness.launch(playwright, cameras.document)
    clerk_browser = await harness.launch(playwright, cameras.face)
    _, kiosk = await harness.new_page(kiosk_browser)
    _, first = await harness.new_page(clerk_browser)
    _, second = await harness.new_page(clerk_browser)
    # The longest idle clerk is offered first.
    await console_signs_in(first, server, "wangli")
    await console_signs_in(second, server, "liuqiang")
    await kiosk_joins(kiosk, server)

    await expect(first.locator("#offer")).to_be_visible()
    await expect(second.locator("#offer")).to_be_hidden()
    await first.keyboard.press("Escape")
    await expect(first.locator("#offer")).to_be_hidden()
    await expect(second.locator("#offer")).to_be_visible()
    await second.click("#accept")
    await expect(kiosk.locator("#clerk-name")).to_have_text("工作人员：刘强")
    await kiosk.click("#consent-yes")
    await wait_playing(kiosk, "#remote-video")
    await wait_playing(second, "#citizen-face")
    await expect(first.locator("#presence-state")).to_have_attribute("data-state", "available")
    await kiosk_browser.close()
    await clerk_browser.close()


async def test_reloading_the_booth_during_a_call_resumes_it(
    server: RunningServer, playwright: Playwright, cameras: Cameras,
) -> None:
    await server.add_clerk("wangli", "王丽")
    kiosk_browser = await harness.launch(playwright, cameras.document)
    clerk_browser = await harness.launch(playwright, cameras.face)
    _, kiosk = await harness.new_page(kiosk_browser)
    _, console = await harness.new_page(clerk_browser)
    await console_signs_in(console, server, "wangli")
    await kiosk_joins(kiosk, server)
    await console.keyboard.press("Enter")
    await kiosk.click("#consent-yes")
    await wait_playing(kiosk, "#remote-video")
    await wait_playing(console, "#citizen-doc")
    session_id = await kiosk.evaluate("window.xiaowu.state.session.session_id")

    await kiosk.reload()
    await expect(kiosk.locator("[data-screen=call]")).to_be_visible()
    assert await kiosk.evaluate("window.xiaowu.state.session.session_id") == session_id
    await wait_playing(kiosk, "#remote-video")
    # The clerk's picture of the booth comes back too (the server replaced the leg).
    frames_before = await console.evaluate(
        "document.querySelector('#citizen-doc').getVideoPlaybackQuality().totalVideoFrames")
    await wait_playing(console, "#citizen-doc")
    frames_after = await console.evaluate(
        "document.querySelector('#citizen-doc').getVideoPlaybackQuality().totalVideoFrames")
    assert frames_after > frames_before
    await expect(console.locator("#call-state")).to_have_attribute("data-key", "call_active")
    # Consent was given before the reload: not asked again.
    await expect(kiosk.locator("#consent")).to_be_hidden()
    await screenshot(kiosk, "kiosk-6-resumed")

    # The console reloaded too: same session, its video back, the booth's keeps playing.
    await console.reload()
    await expect(console.locator("#call")).to_be_visible()
    assert await console.evaluate("window.xiaowu.session.session_id") == session_id
    await wait_playing(console, "#citizen-face")
    await wait_playing(kiosk, "#remote-video")

    await console.click("#end-failed")  # confirm() is dismissed: nothing happens
    await expect(console.locator("#call")).to_be_visible()
    console.on("dialog", lambda dialog: dialog.accept())
    await console.click("#end-failed")
    await expect(kiosk.locator("[data-screen=rating]")).to_be_visible()
    await expect(kiosk.locator("#ended-title")).to_have_text("本次服务已结束")
    await kiosk_browser.close()
    await clerk_browser.close()
