"""Presence: per-person state, its MQTT/SIP/HTTP inputs and outputs.

model.py   pure records and transitions (set, until-expiry, call-busy counting), the book
topics.py  pure MQTT topic names, command/state payloads, Home Assistant discovery
pidf.py    pure PIDF (RFC 3863) + RPID (RFC 4480) build and parse
hub.py     the asyncio holder: snapshot(tenant), set(), call_started/ended(), change feeds
mqtt.py    the aiomqtt bridge (last will, reconnect with backoff, republish)
peers.py   pure: presence shared between nodes (peer messages, last writer wins, no loops)
store.py   aiosqlite persistence, restored at start
http.py    aiohttp handlers: presence_routes(hub)
errors.py  the error tree
"""
