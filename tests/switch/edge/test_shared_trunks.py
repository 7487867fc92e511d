"""Trunk registrations (uac's ``uacreg``) in the shared PostgreSQL (``shared_db_url``): the
rows are written once into the shared database (not into each edge's SQLite file), every
node's edge loads them (outbound auth, inbound trunk lookup), and only the node with
``register_trunks`` sends REGISTERs (uac ``reg_active``): a provider takes one
registration per account. Rendered configs pass ``kamailio -c``."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from switch.edge import EdgeSettings, write_files
from switch.edge.config import render_config
from tests.helpers.edge import needs_db_postgres
from tests.helpers.pg import fresh_database

ACCOUNT = {"name": "sg", "profile": "sipgate", "registrar": "100.64.0.1",
           "username": "1234567t0",
           "numbers": [{"prefix": "+4923319876540", "tenant": "m"}]}  # fmt: skip


def node(tmp_path: Path, name: str, **kw: Any) -> EdgeSettings:
    secrets = tmp_path / "secrets.yaml"  # the shared settings directory's
    secrets.write_text("realm: office\nusers: {}\ntrunks: {sg: geheim}\n")
    secrets.chmod(0o600)
    return EdgeSettings(listen="127.0.0.1:5999", run_dir=tmp_path / name,
        db_path=tmp_path / name / "edge.db", secrets_file=secrets,
        public_numbers=["+4923319876540"], trunks={"accounts": [ACCOUNT]}, **kw)  # fmt: skip


def test_the_registering_node_is_reg_active_and_the_rows_are_shared(tmp_path: Path) -> None:
    url = "postgres://rufweiche@10.0.0.5:5432/rufweiche"
    primary = render_config(node(tmp_path, "a", shared_db_url=url))
    standby = render_config(node(tmp_path, "b", shared_db_url=url, register_trunks=False))
    for text in (primary, standby):
        uac = text.split('loadmodule "uac.so"', 1)[1].split("loadmodule", 1)[0]
        assert 'modparam("uac", "reg_db_url", SHARED_DBURL)' in uac
    assert 'modparam("uac", "reg_active", 1)' in primary
    assert 'modparam("uac", "reg_active", 0)' in standby
    single = render_config(node(tmp_path, "c"))  # one node: its own file, registering
    assert 'modparam("uac", "reg_active", 1)' in single
    assert "#!define WITH_SHARED_DB" not in single


async def uacreg(url: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://"), timeout=5)
    try:
        return [dict(r) for r in await conn.fetch("SELECT * FROM uacreg ORDER BY l_uuid")]
    finally:
        await conn.close()


@pytest.mark.peer
@pytest.mark.skipif(shutil.which("kamailio") is None, reason="needs kamailio")
@needs_db_postgres
async def test_two_nodes_write_one_uacreg_row_and_their_configs_pass_kamailio_c(
    tmp_path: Path,
) -> None:
    async with fresh_database() as url:
        a = write_files(node(tmp_path, "a", shared_db_url=url))
        b = write_files(node(tmp_path, "b", shared_db_url=url, register_trunks=False))
        (row,) = await uacreg(url)  # both nodes wrote it: one row, not two
        assert (row["l_uuid"], row["r_username"], row["auth_password"]) == (
            "sg",
            "1234567t0",
            "geheim",
        )
        assert row["flags"] == 0
        for paths in (a, b):
            text = paths.config.read_text()
            assert "geheim" not in text
            with sqlite3.connect(paths.db) as db:  # not in the node's own file
                tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
                assert (
                    "uacreg" not in tables
                    or not db.execute("SELECT COUNT(*) FROM uacreg").fetchone()[0]
                )
            check = await asyncio.to_thread(subprocess.run,
                ["kamailio", "-c", "-f", str(paths.config)],
                capture_output=True, text=True, timeout=30)  # fmt: skip
            assert check.returncode == 0, check.stderr[-2000:]
