"""Presence: per-person state, its MQTT/SIP/HTTP inputs and outputs."""
