"""The phone page (/m, the mini-program's web view) in a phone-sized Chromium page."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from playwright.async_api import Playwright, expect

from server import app_keys
from server.storage import tables
from tests.e2e import harness
from tests.e2e.conftest import Cameras
from tests.e2e.harness import RunningServer, screenshot
from tests.e2e.test_call_flow import DEPOSIT, console_signs_in, wait_playing

pytestmark = pytest.mark.browser


async def test_the_phone_page_queues_calls_survives_a_network_switch_and_rates(
    server: RunningServer, playwright: Playwright, cameras: Cameras,
) -> None:
    await server.add_clerk("wangli", "王丽")
    phone_browser = await harness.launch(playwright, cameras.document)
    clerk_browser = await harness.launch(playwright, cameras.face)
    phone_context, phone = await harness.new_page(phone_browser, phone=True)
    _, console = await harness.new_page(clerk_browser)
    await console_signs_in(console, server, "wangli", available=False)

    await phone.goto(server.mobile_url())
    await expect(phone.locator(f".matter[data-code='{DEPOSIT}']")).to_be_visible()
    assert "t=" not in phone.url  # the entry token left the address bar
    await screenshot(phone, "mobile-1-home")
    await phone.click(f".matter[data-code='{DEPOSIT}']")
    await phone.click("#join")
    await expect(phone.locator("#position")).to_have_text("下一位就是您")
    await screenshot(phone, "mobile-2-queue")

    await console.click("#go-available")
    await expect(console.locator("#offer")).to_be_visible()
    await expect(console.locator("#offer-facts")).to_contain_text("手机")
    await console.keyboard.press("Enter")
    await phone.click("#consent-yes")
    await wait_playing(phone, "#remote-video")
    await wait_playing(console, "#citizen-face")
    assert await phone.evaluate("document.querySelector('#remote-video').playsInline") is True
    await screenshot(phone, "mobile-3-call")

    # Front/back switch: the track is replaced without renegotiating, the clerk keeps video.
    await phone.click("#flip")
    await phone.wait_for_function("window.xiaowu.cameras.facing === 'environment'")
    await wait_playing(console, "#citizen-face")

    # A network switch: the socket drops and comes back; the session resumes.
    await phone_context.set_offline(True)
    await phone.evaluate("window.xiaowu.conn.bounce()")
    await expect(phone.locator("#net")).to_be_visible()
    await phone_context.set_offline(False)
    await expect(phone.locator("#net")).to_be_hidden(timeout=10_000)
    await expect(phone.locator("[data-screen=call]")).to_be_visible()

    # The clerk captures from the phone's only camera. This page takes no stills (as an
    # old web view might not): the console falls back to a snapshot of the stream.
    await phone.evaluate("window.xiaowu._stillRequested = async () => {}")
    slot = console.locator("#slots li[data-slot=id_card_front]")
    await slot.locator("button[data-action=capture]").click()
    await expect(slot.locator(".verdict")).to_have_class("verdict ok", timeout=30_000)
    await expect(phone.locator("#capture-feedback")).to_contain_text("工作人员已收到")
    async with server.app[app_keys.DB].connect() as conn:
        paths = (await conn.execute(sa.select(tables.case_documents.c.path))).scalars().all()
    assert paths == ["snapshot"]

    console.on("dialog", lambda dialog: dialog.accept())
    await console.click("#end-failed")
    await expect(phone.locator("[data-screen=rating]")).to_be_visible()
    await phone.click(".star[data-score='5']")
    await phone.click("#rate")
    await expect(phone.locator("[data-screen=done]")).to_be_visible()
    await screenshot(phone, "mobile-4-done")
    await phone_browser.close()
    await clerk_browser.close()
