"""``shared_db_url``: the rendered config puts usrloc and auth_db on PostgreSQL (pure)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from pydantic import ValidationError

from switch.edge import config
from switch.edge.config import render_config
from switch.edge.settings import LOCATION_FLUSH_S
from tests.helpers.edge import edge_settings, stored_bindings


def test_shared_db_url_moves_usrloc_and_auth_to_postgresql(tmp_path: Path) -> None:
    url = "postgres://rufweiche@10.0.0.5:5432/rufweiche"
    text = render_config(edge_settings(tmp_path, shared_db_url=url))
    assert "#!define WITH_SHARED_DB" in text
    assert f'#!define SHARED_DBURL "{url}"' in text
    assert 'modparam("usrloc", "db_url", SHARED_DBURL)' in text
    assert 'modparam("auth_db", "db_url", SHARED_DBURL)' in text
    assert 'modparam("presence", "db_url", DBURL)' in text  # per edge, not shared


def test_without_it_everything_stays_in_the_local_file(tmp_path: Path) -> None:
    text = render_config(edge_settings(tmp_path))
    assert "#!define WITH_SHARED_DB" not in text
    assert '#!define SHARED_DBURL "sqlite://' in text


def test_the_write_back_interval_is_the_one_the_tests_wait_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One source: usrloc's timer_interval is rendered from LOCATION_FLUSH_S, and
    # stored_bindings waits for that interval (plus slack) by default.
    interval = 'modparam("usrloc", "timer_interval", {})'
    assert interval.format(LOCATION_FLUSH_S) in render_config(edge_settings(tmp_path))
    monkeypatch.setattr(config, "LOCATION_FLUSH_S", 7)
    assert interval.format(7) in render_config(edge_settings(tmp_path))
    wait = inspect.signature(stored_bindings).parameters["within"].default
    assert wait == LOCATION_FLUSH_S + 5


@pytest.mark.parametrize(
    "url",
    [
        "postgres://u:secret@h:5432/db",
        "mysql://u@h/db",
        "postgres://u@h/db;drop",
        'postgres://u@h/"',
    ],
)
def test_bad_or_password_carrying_urls_are_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(ValidationError, match="shared_db_url"):
        edge_settings(tmp_path, shared_db_url=url)
