"""The call-record writer: reports in, batches out, off the caller's path.

Theory of operation
-------------------
Workers report each call three times (``started``, ``answered``, ``ended``; see
:mod:`switch.call.calllog`). The supervisor hands every report to
:meth:`RecordWriter.submit`, which only puts it on a bounded :class:`asyncio.Queue`:
the caller's path never waits for the disk. One task takes whatever is queued and
writes it in a single transaction (a *batch*), so a burst of calls costs one commit.
How a report becomes rows (upserts, ``phase_rank``) is :mod:`switch.records.rows`.

When SQLite refuses a batch with :class:`sqlite3.OperationalError` (locked beyond
``busy_timeout``, disk full, I/O error), the batch goes to the *spool*
(:mod:`switch.records.spool`), or to the next of ``spool_dirs`` (another file system),
or, when no spool can be written either (the one disk is full), into a bounded
in-memory *backlog* (``backlog_max``): the records are then "not durable"
(:meth:`RecordWriter.health`, ``/healthz``, ``rufweiche_records_durable``). A
``reserve_bytes`` file taken at start is given back on the first "disk full", so that
the next minutes of records still find room. Whatever waits is retried before the next
batch and on a timer with backoff (``retry_min`` doubling to ``retry_interval``), and
when the writer starts. Only items beyond ``backlog_max`` are dropped (oldest first,
counted in ``records_lost``, logged as CALL RECORDS LOST). A report the database
refuses for itself (not a transient error: e.g. a NULL where the schema forbids one) is
set aside in ``<db>.rejected.jsonl`` with the error, and the rest of its batch is
written one by one, so one bad report never blocks the others.

Durability (fsync policy):
- the database runs in WAL mode with ``synchronous=FULL``: a committed batch survives a
  power loss (one fsync per batch, not per record, thanks to batching);
- every spool append is flushed and ``os.fsync``-ed before the writer moves on;
- records still in the queue when the process is killed (not stopped) are lost; a clean
  stop (``__aexit__``) writes them first. The calls they describe are still closed as
  ``aborted`` at the next start if their ``started`` report had been written.

Errors: :class:`~switch.errors.RecordsError` (a database with a newer schema, or one
that cannot be opened at start).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiosqlite

from switch.call.calllog import CallRecord
from switch.errors import RecordsError
from switch.records.batch import write_items
from switch.records.queries import TenantUsage, monthly_usage, recent_calls
from switch.records.rows import PHASE_RANK, UPSERT_CALL, CallerPolicy
from switch.records.schema import connect, migrate, transaction
from switch.records.spool import Abort, Fallback, Item, Report, Spool

log = logging.getLogger(__name__)


@dataclass(slots=True)
class WriterStats:
    """Counters for tests, /healthz and the logs."""

    batches: int = 0
    records_written: int = 0
    records_spooled: int = 0
    records_replayed: int = 0
    records_lost: int = 0
    records_rejected: int = 0
    records_held: int = 0  # reports kept in memory because no spool could be written
    records_recovered: int = 0  # held reports written to the database later
    failed_batches: int = 0
    last_error: str | None = None
    batch_sizes: list[int] = field(default_factory=list)


_STOP: Final = object()

ConnectHook = Callable[[aiosqlite.Connection], Awaitable[None]]


class RecordWriter:
    """Writes call records in batches, off the caller's path; see the module docstring.

    ``async with RecordWriter(path) as writer:`` migrates the schema, replays the spool,
    closes calls a previous run left active, and starts the batching task; leaving the
    block writes what is queued and stops. ``on_connect`` is a test seam, called with
    the writing connection after it is set up (e.g. to cap ``max_page_count``).
    """

    node: str | None = None  # one node on SQLite; PgRecordWriter names its own
    _upsert_call: str = UPSERT_CALL

    def __init__(
        self,
        path: Path,
        *,
        queue_size: int = 10_000,
        batch_max: int = 500,
        busy_timeout: float = 2.0,
        retry_interval: float = 5.0,
        retry_min: float = 0.25,
        spool_dirs: Sequence[Path] = (),
        backlog_max: int = 20_000,
        reserve_bytes: int = 0,
        on_connect: ConnectHook | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.fallback = Fallback(
            self.path, spool_dirs, backlog_max=backlog_max, reserve_bytes=reserve_bytes
        )
        self.spool: Spool = self.fallback.spools[0]
        self.spool_path = self.spool.path
        self.rejected_path = self.path.with_name(self.path.name + ".rejected.jsonl")
        self._closed = False
        self._queue: asyncio.Queue[Item | object] = asyncio.Queue(maxsize=queue_size)
        self._batch_max = batch_max
        self._busy_timeout = busy_timeout
        self._retry_interval = retry_interval
        self._retry_min = min(retry_min, retry_interval)
        self._backoff = self._retry_min
        self._on_connect = on_connect
        self._clock = clock
        self._db: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self.stats = WriterStats()
        self.writable = False  # the last attempt to write succeeded
        self.idle = asyncio.Event()  # set whenever the queue is empty and nothing is in flight
        self.idle.set()

    # -- lifecycle

    async def __aenter__(self) -> RecordWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = await connect(self.path, busy_timeout=self._busy_timeout)
            await migrate(self._db, path=self.path)
            if self._on_connect is not None:
                await self._on_connect(self._db)
            self._reader = await connect(self.path, busy_timeout=self._busy_timeout)
            await self._reader.execute("PRAGMA query_only = ON")
        except (sqlite3.Error, OSError) as exc:
            await self._close_connections()
            raise RecordsError(
                f"records database {str(self.path)!r} cannot be opened: {exc}", path=self.path
            ) from exc
        except BaseException:
            await self._close_connections()
            raise
        self.writable = True
        self.fallback.start()
        await self._replay_spool()
        # Calls still active now were left by a previous run (it crashed or was killed).
        self._queue.put_nowait(Abort(None, self._clock()))
        self.idle.clear()
        self._task = asyncio.create_task(self._run(), name="record-writer")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closed = True  # from now on, submit() spools
        if self._task is not None:
            try:
                self._queue.put_nowait(_STOP)
            except asyncio.QueueFull:
                # Make room by spooling the oldest report; the writer then sees the stop.
                self._spool_items([self._queue.get_nowait()])  # type: ignore[list-item]
                self._queue.put_nowait(_STOP)
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.fallback.backlog:
            lost = self.fallback.take_backlog()
            self.stats.records_lost += sum(isinstance(i, Report) for i in lost)
            log.error(
                "CALL RECORDS LOST at stop: %d item(s) were only in memory (database and "
                "spools not writable)",
                len(lost),
            )
        await self._close_connections()

    async def _close_connections(self) -> None:
        for db in (self._reader, self._db):
            if db is not None:
                with contextlib.suppress(sqlite3.Error, ValueError):
                    await db.close()
        self._db = self._reader = None

    # -- the caller's side

    def submit(
        self, phase: str, record: CallRecord, store_caller: CallerPolicy | str = CallerPolicy.FULL
    ) -> None:
        """Queue one report; never waits. A full queue spools the report at once."""
        if phase not in PHASE_RANK:
            raise ValueError(f"call record phase {phase!r} is not one of {sorted(PHASE_RANK)}")
        item = Report(phase, record, CallerPolicy(store_caller))
        if self._closed or self._task is None:
            self._spool_items([item])  # replayed at the next start
            return
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            log.warning(
                "call %s (tenant %s): record queue full, spooling the %s report",
                record.call_id,
                record.tenant,
                phase,
            )
            self._spool_items([item])
            return
        self.idle.clear()

    async def close_aborted(self, worker: str | None = None) -> int:
        """Close as ``aborted`` the active calls of ``worker`` (all workers when None).

        Runs in order with the reports queued before it. Returns the number of calls
        closed, or 0 when the database refused and the request went to the spool.
        """
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        item = Abort(worker, self._clock(), done)
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self._spool_items([item])
            return 0
        self.idle.clear()
        return await done

    async def flush(self) -> None:
        """Wait until everything submitted so far has been written or spooled."""
        await self.idle.wait()

    # -- queries (on a second connection, so that reads never wait behind a batch)

    async def recent_calls(self, **kwargs: Any) -> list[dict[str, Any]]:
        assert self._reader is not None, "RecordWriter used outside 'async with'"
        return await recent_calls(self._reader, **kwargs)

    async def monthly_usage(self, month: str, **kwargs: Any) -> list[TenantUsage]:
        assert self._reader is not None, "RecordWriter used outside 'async with'"
        return await monthly_usage(self._reader, month, **kwargs)

    @property
    def queued(self) -> int:
        """Reports waiting in memory for the next batch."""
        return self._queue.qsize()

    @property
    def spool_pending(self) -> bool:
        """Items wait in a spool file or in memory."""
        return self.fallback.pending

    @property
    def backlog(self) -> int:
        """Items held in memory only: neither the database nor a spool took them."""
        return len(self.fallback.backlog)

    @property
    def durable(self) -> bool:
        """Every record submitted so far is on a disk (database or spool), or queued."""
        return not self.fallback.backlog

    def health(self) -> dict[str, Any]:
        """The records part of ``/healthz`` (issue 14: "records not durable")."""
        reserve = self.fallback.reserve
        return {
            "state": "durable" if self.durable else "not durable",
            "durable": self.durable,
            "writable": self.writable,
            "queued": self.queued,
            "backlog": self.backlog,
            "backlog_max": self.fallback.backlog_max,
            "lost": self.stats.records_lost,
            "spool_pending": self.spool_pending,
            "spools": [str(s.path) for s in self.fallback.spools],
            "reserve_bytes": reserve.size if reserve.held else 0,
            "reserve_released": reserve.released,
            "last_error": self.stats.last_error,
        }

    # -- the writing task

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            # While records wait outside the database, retry with backoff (retry_min
            # doubling up to retry_interval); otherwise just wait for the next report.
            wait = self._backoff if self.spool_pending else self._retry_interval
            try:
                first = await asyncio.wait_for(self._queue.get(), wait)
            except TimeoutError:
                if self.spool_pending:
                    await self._replay_spool()
                    if self.spool_pending:
                        self._backoff = min(self._backoff * 2, self._retry_interval)
                    if self._queue.empty():
                        self.idle.set()
                continue
            batch: list[Item] = []
            for item in self._drain(first):
                if item is _STOP:
                    stopping = True
                else:
                    batch.append(item)  # type: ignore[arg-type]
            try:
                await self._write_batch(batch)
            except Exception:  # a bug must not stop the writer: keep the records, go on
                log.exception("call-record writer failed on a batch of %d", len(batch))
                self._spool_items(batch)
            if self._queue.empty():
                self.idle.set()

    def _drain(self, first: object) -> list[object]:
        items = [first]
        while len(items) < self._batch_max:
            try:
                items.append(self._queue.get_nowait())
            except asyncio.QueueEmpty:
                break
        return items

    async def _write_batch(self, batch: Sequence[Item]) -> None:
        if self.spool_pending and not await self._replay_spool():
            self._backoff = min(self._backoff * 2, self._retry_interval)
        if not batch:
            return
        if self.spool_pending:
            # The spool could not be replayed: keep the order, append behind it.
            self._spool_items(batch)
            return
        try:
            closed = await self._commit(batch)
        except sqlite3.OperationalError as exc:
            self._failed(exc, len(batch))
            self._spool_items(batch)
            return
        self.writable = True
        self.stats.batches += 1
        self.stats.batch_sizes.append(len(batch))
        self.stats.records_written += sum(isinstance(i, Report) for i in batch)
        for item, count in zip(batch, closed, strict=True):
            if isinstance(item, Abort):
                item.resolve(count)

    def _failed(self, exc: sqlite3.Error, count: int) -> None:
        self.writable = False
        self.stats.failed_batches += 1
        self.stats.last_error = str(exc)
        self.fallback.noticed(exc)  # a full disk gives the reserve back
        log.warning(
            "records database %s refused a batch of %d (%s): spooling to %s",
            self.path,
            count,
            exc,
            self.spool_path,
        )

    async def _commit(self, batch: Sequence[Item]) -> list[int]:
        """Write a batch; if one item is poison (not a transient OperationalError, e.g. a
        NULL where the schema forbids it), write the others one by one and set the poison
        aside in ``<db>.rejected.jsonl`` rather than blocking every later batch."""
        try:
            return await self._transaction(batch)
        except sqlite3.OperationalError:
            raise
        except (sqlite3.Error, ValueError, TypeError, KeyError) as exc:
            if len(batch) == 1:
                self._reject(batch[0], exc)
                return [0]
        closed: list[int] = []
        for item in batch:
            closed += await self._commit([item])
        return closed

    def _reject(self, item: Item, exc: BaseException) -> None:
        self.stats.records_rejected += 1
        log.error(
            "call-record item refused by the database, set aside in %s: %r", self.rejected_path, exc
        )
        with contextlib.suppress(OSError), open(self.rejected_path, "a", encoding="utf-8") as out:
            out.write(json.dumps({**item.to_json(), "error": str(exc)}, default=str) + "\n")
        if isinstance(item, Abort):
            item.resolve(0)

    async def _transaction(self, batch: Sequence[Item]) -> list[int]:
        """Write a batch in one transaction; per item, the number of calls an abort closed."""
        db = self._db
        assert db is not None
        async with transaction(db):
            return await write_items(
                db, batch, self._clock(), upsert_call=self._upsert_call, node=self.node
            )

    # -- the spool, the fallback spools and the in-memory backlog (spool.Fallback)

    def _spool_items(self, items: Sequence[Item], *, fresh: bool = True) -> None:
        """Spool ``items`` (``fresh``: not yet counted), or hold them in memory."""
        was_durable = self.durable
        put = self.fallback.put(items)
        for item in items:
            if isinstance(item, Abort):
                item.resolve(0)
        reports = sum(isinstance(i, Report) for i in items)
        if put.spool is not None:
            self.stats.records_spooled += reports
            if not was_durable:
                log.warning("records durable again: the backlog went to %s", put.spool)
            return
        if fresh:
            self.stats.records_held += reports
        self.stats.records_lost += put.lost_reports
        if was_durable:  # once per episode; every loss is logged by the Fallback
            log.error(
                "records NOT DURABLE: call records are held in memory only (up to %d items), "
                "neither the database %s nor a spool can be written (%s); retrying",
                self.fallback.backlog_max,
                self.path,
                self.fallback.last_error,
            )

    async def _replay_spool(self) -> bool:
        """Write every spool, then the backlog, to the database; True when nothing waits."""
        for spool in self.fallback.spools:
            if spool.pending and not await self._replay_one(spool):
                return False
        if self.fallback.backlog:
            held = self.fallback.take_backlog()
            try:
                await self._commit(held)
            except sqlite3.OperationalError as exc:
                self._failed(exc, len(held))
                self._spool_items(held, fresh=False)  # to a spool with room, or to memory
                return False
            recovered = sum(isinstance(i, Report) for i in held)
            self.stats.records_recovered += recovered
            self.stats.records_written += recovered
            log.warning("records durable again: %d held item(s) written", len(held))
        self.writable = True
        self._backoff = self._retry_min
        self.fallback.reserve.restore()
        return not self.spool_pending

    async def _replay_one(self, spool: Spool) -> bool:
        """Write one spool file to the database; True when it is empty afterwards."""
        items = spool.take()
        if items is None:
            return True
        try:
            if items:
                await self._commit(items)
        except sqlite3.OperationalError as exc:
            self._failed(exc, len(items))
            return False
        self.writable = True
        self.stats.records_replayed += sum(isinstance(i, Report) for i in items)
        spool.replayed()
        if items:
            log.info("replayed %d spooled call-record item(s) from %s", len(items), spool.path)
        return not spool.path.exists()
