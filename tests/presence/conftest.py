"""Fixtures for presence tests: a private Mosquitto per test (tests/helpers/mosquitto.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.mosquitto import MosquittoBroker, mosquitto_broker


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[MosquittoBroker]:
    with mosquitto_broker(tmp_path) as broker:
        yield broker
