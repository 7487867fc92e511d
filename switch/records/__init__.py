"""Call data: the only package that opens the calls database.

writer.py   schema, migrations, RecordWriter (batches off the call path, spool), queries
report.py   the monthly usage aggregate
privacy.py  export / delete / purge of a person's or a caller's data

May import: switch.call (the records), switch.errors. Never click, aiohttp.
"""
