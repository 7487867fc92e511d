"""Call data: the only package that opens the calls database (``calls.sqlite3``).

schema.py      RECORDS_FILE, the migrations, connect() (every connection), transaction(),
               CallsDbStore (the lifecycle of the stores below)
rows.py        a call report as rows (upserts, store_caller policy) and rows as API dicts; pure
queries.py     recent_calls, usage, monthly_usage, month_bounds, RecordReader
writer.py      RecordWriter: queue, batches, one transaction per batch, spool and replay
batch.py       how a batch becomes SQL on either backend: runs of upserts, aborts between
spool.py       what the database refused for now: append, take for replay, read
voicemails.py  the voicemails table (voicemail and dictation): file, list, mark done, privacy
privacy.py     export / delete / purge of a person's or a caller's data (GDPR)
report.py      the monthly aggregate per business
backend.py     the records: settings (sqlite | postgresql) and the one switch point
dialect.py     the PostgreSQL dialect of the records' SQL: every difference in one place; pure
pgconnection.py  PgConnection: an aiosqlite-shaped adapter on an asyncpg pool, errors as sqlite3's
postgres.py    the pool, the migrations on PostgreSQL, PgRecordWriter, PgVoicemailStore,
               PgMessageStore (messages, contacts): the same stores on a pool
pgpresence.py  PgPresenceStore: presence/store.py's table in the shared schema

May import: switch.call (the records), switch.masking, switch.errors, rules,
presence.store and presence.model (pgpresence.py, backend.py); asyncpg and
pydantic (postgres.py, backend.py). Never click,
aiohttp, aiomqtt (the command lines are switch/cli/, the notices switch/supervisor/).
"""
