"""Rufweiche dial-plan language: pure models and the routing decision.

Nothing in this package performs I/O, reads a clock or imports asyncio. The clock
(`now`) and the presence snapshot come in as arguments to :func:`rules.decide`.
"""
