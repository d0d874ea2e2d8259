"""Fixtures for the end-to-end tests: fake camera files, Playwright, a running server.

Chromium is a real service here like PostgreSQL: missing, the tests fail (always in
CI); locally ``XIAOWU_ALLOW_MISSING=1`` turns that into a named skip.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Playwright, async_playwright

from tests.conftest import missing_service
from tests.e2e import harness
from tests.e2e.fake_media import document_frame, face_frame, write_y4m

pytestmark = pytest.mark.browser


@dataclass(frozen=True)
class Cameras:
    document: Path
    face: Path


@pytest.fixture(scope="session")
def cameras(tmp_path_factory: pytest.TempPathFactory) -> Cameras:
    folder = tmp_path_factory.mktemp("cameras")
    return Cameras(document=write_y4m(folder / "document.y4m", document_frame()),
                   face=write_y4m(folder / "face.y4m", face_frame()))


@pytest.fixture
async def playwright() -> AsyncIterator[Playwright]:
    problem = harness.chromium_missing()
    if problem is not None:
        missing_service("Chromium", FileNotFoundError(problem))
    async with async_playwright() as pw:
        yield pw


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[harness.RunningServer]:
    # Short wrap-up so a clerk is free again within a test.
    async with harness.running_server(tmp_path, wrap_up_s=2.0) as running:
        yield running
