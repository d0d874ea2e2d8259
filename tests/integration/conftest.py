"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from media.endpoint import LocalMediaEndpoint


@pytest.fixture
async def endpoint() -> AsyncIterator[LocalMediaEndpoint]:
    ep = LocalMediaEndpoint()
    yield ep
    await ep.close()
