"""switch/masking.py: the one rule by which logs, records and the dashboard hide a number."""

from __future__ import annotations

import pytest

from switch.call import sipheaders
from switch.masking import ANONYMOUS, loggable_number, mask_number
from switch.records.rows import CallerPolicy, apply_caller_policy
from switch.web import dashboard
from switch.worker import driver


def test_mask_number_keeps_country_and_last_digits() -> None:
    assert mask_number("+4917112345678") == "+491********78"
    assert mask_number("sip:017112345678@pbx.example;user=phone") == (
        "sip:017*******78@pbx.example;user=phone"
    )
    assert mask_number("+491715550100") == "+491*******00"
    assert mask_number("12345") == "1**45"  # five digits: one kept in front
    assert mask_number("123") == "***"
    assert mask_number("*31") == "***"
    assert mask_number("") == ""
    assert mask_number(None) is None


def test_a_log_line_shows_anonymous_for_no_number() -> None:
    assert loggable_number(None) == ANONYMOUS == "anonymous"
    assert loggable_number("") == "anonymous"
    assert loggable_number("*31") == "***"


@pytest.mark.parametrize(
    "number",
    ["+4917112345678", "+491715550100", "017112345678", "sip:+4930123456@pbx", "*31", "1234567"],
)
def test_logs_and_records_mask_a_number_alike(number: str) -> None:
    """Issue 13: the worker logged ``+4917…78`` for a caller that the records (store_caller:
    masked) and the dashboard showed as ``+491********78``; two numbers that looked alike in
    one could be told apart in the other."""
    stored = apply_caller_policy(number, CallerPolicy.MASKED)
    assert vars(driver)["loggable_number"](number) == stored  # what the worker logs
    assert vars(dashboard)["mask_number"](number) == stored  # what the dashboard shows
    assert not hasattr(sipheaders, "mask_number")  # the second rule is gone
