"""The E-model MOS estimate: reference points from G.107, then its shape (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switch.call.calllog import MediaStats
from switch.call.quality import (
    CODECS,
    CodecImpairment,
    codec_impairment,
    delay_impairment,
    effective_equipment_impairment,
    estimate_mos,
    mos_for,
    mos_from_r,
    mouth_to_ear_delay_ms,
    r_factor,
)
from switch.errors import MediaQualityError, SwitchError

PCMU = CODECS["pcmu"]
losses = st.floats(0.0, 100.0, allow_nan=False)
delays = st.floats(0.0, 2000.0, allow_nan=False)
codecs = st.builds(
    CodecImpairment,
    ie=st.floats(0.0, 60.0),
    bpl=st.floats(1.0, 40.0),
    source=st.just("test"),
)


# ------------------------------------------------------------------ reference points


def test_default_connection_rates_4_41() -> None:
    """G.107: with all defaults R = 93.2, which is MOS 4.41."""
    assert mos_from_r(93.2) == pytest.approx(4.41, abs=0.005)


@pytest.mark.parametrize(
    ("r", "mos"),
    # The G.109 category boundaries, as G.107 Annex B maps them.
    [(90.0, 4.34), (80.0, 4.02), (70.0, 3.60), (60.0, 3.10), (50.0, 2.58)],
)
def test_mos_at_the_g109_category_boundaries(r: float, mos: float) -> None:
    assert mos_from_r(r) == pytest.approx(mos, abs=0.005)


@pytest.mark.parametrize(("r", "mos"), [(-10.0, 1.0), (0.0, 1.0), (100.0, 4.5), (130.0, 4.5)])
def test_mos_is_bounded_by_1_and_4_5(r: float, mos: float) -> None:
    assert mos_from_r(r) == mos


def test_mos_cubic_dip_below_1_is_clamped() -> None:
    """The Annex B cubic gives 0.989 at R = 3.2; a MOS below 1 does not exist."""
    raw = 1 + 0.035 * 3.2 + 3.2 * (3.2 - 60) * (100 - 3.2) * 7e-6
    assert raw < 1.0
    assert mos_from_r(3.2) == 1.0


def test_pcmu_without_loss_or_delay_is_the_default_connection() -> None:
    assert PCMU.ie == 0.0
    assert r_factor(PCMU, 0.0, 0.0) == pytest.approx(93.2)
    assert estimate_mos(PCMU, 0.0, 0.0) == pytest.approx(4.41, abs=0.005)


@pytest.mark.parametrize(
    ("delay", "id_"),
    [
        (0.0, 0.0),
        (100.0, 2.4),
        (177.3, 4.2552),
        (200.0, 4.8 + 0.11 * 22.7),
        (400.0, 9.6 + 0.11 * 222.7),
    ],
)
def test_delay_impairment_follows_the_piecewise_fit(delay: float, id_: float) -> None:
    assert delay_impairment(delay) == pytest.approx(id_, abs=1e-3)


def test_g711_loss_impairment() -> None:
    # Ie,eff = 0 + 95·1/(1 + 25.1): about 3.6 R points for the first percent with PLC.
    assert effective_equipment_impairment(PCMU, 1.0) == pytest.approx(95 / 26.1)
    # Without concealment (Bpl 4.3) the same loss costs far more.
    no_plc = CodecImpairment(0.0, 4.3, "G.711 without PLC")
    assert effective_equipment_impairment(no_plc, 1.0) == pytest.approx(95 / 5.3)
    # All packets lost: the impairment reaches its ceiling, whatever the codec.
    assert effective_equipment_impairment(PCMU, 100.0) == pytest.approx(95 * 100 / 125.1)


def test_bursty_loss_hurts_more_than_random_loss() -> None:
    assert effective_equipment_impairment(PCMU, 5.0, burst_ratio=2.0) > (
        effective_equipment_impairment(PCMU, 5.0)
    )


def test_a_typical_good_call_and_a_bad_one() -> None:
    assert estimate_mos(PCMU, 0.5, 60.0) == pytest.approx(4.34, abs=0.005)
    assert estimate_mos(PCMU, 10.0, 300.0) < 3.0


# ------------------------------------------------------------------ shape


@given(codec=codecs, loss=losses, more=losses, delay=delays)
def test_mos_never_rises_with_more_loss(
    codec: CodecImpairment, loss: float, more: float, delay: float
) -> None:
    low, high = sorted((loss, more))
    assert estimate_mos(codec, high, delay) <= estimate_mos(codec, low, delay)


@given(codec=codecs, loss=losses, delay=delays, more=delays)
def test_mos_never_rises_with_more_delay(
    codec: CodecImpairment, loss: float, delay: float, more: float
) -> None:
    short, long = sorted((delay, more))
    assert estimate_mos(codec, loss, long) <= estimate_mos(codec, loss, short)


@given(r=st.floats(-50.0, 150.0), s=st.floats(-50.0, 150.0))
def test_mos_never_falls_when_r_rises(r: float, s: float) -> None:
    low, high = sorted((r, s))
    assert 1.0 <= mos_from_r(low) <= mos_from_r(high) <= 4.5


@given(codec=codecs, loss=losses, delay=delays)
def test_r_is_at_most_the_default(codec: CodecImpairment, loss: float, delay: float) -> None:
    assert r_factor(codec, loss, delay) <= 93.2 + 1e-9


@given(delay=st.floats(0.0, 1000.0))
def test_delay_impairment_is_continuous_at_the_knee(delay: float) -> None:
    # Both pieces agree at 177.3 ms: just left and right of it differ by little.
    eps = 1e-6
    assert delay_impairment(177.3 + eps) - delay_impairment(177.3 - eps) < 1e-5
    assert delay_impairment(delay) >= 0.024 * delay


# ------------------------------------------------------------------ inputs


@pytest.mark.parametrize("loss", [-0.1, 100.1])
def test_loss_outside_a_percentage_is_refused(loss: float) -> None:
    with pytest.raises(MediaQualityError, match=rf"packet loss {loss!r} % is not within"):
        effective_equipment_impairment(PCMU, loss)


def test_negative_delay_and_small_burst_ratio_are_refused() -> None:
    with pytest.raises(MediaQualityError, match=r"one-way delay -1\.0 ms is negative"):
        delay_impairment(-1.0)
    with pytest.raises(MediaQualityError, match=r"burst ratio 0\.5 is below 1") as info:
        effective_equipment_impairment(PCMU, 1.0, burst_ratio=0.5)
    assert isinstance(info.value, SwitchError)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("name", "known"),
    [
        ("PCMU", True),
        ("pcma", True),
        ("PCMU/8000/1", True),
        ("G722", True),
        ("GSM", False),
        ("speex", False),
        ("iLBC", False),
        ("", False),
        (None, False),
    ],
)
def test_codec_names_as_pjsua_reports_them(name: str | None, known: bool) -> None:
    assert (codec_impairment(name) is not None) is known


# ------------------------------------------------------------------ from RTCP figures


def test_delay_estimate_from_rtcp() -> None:
    assert mouth_to_ear_delay_ms(40.0, 5.0) == pytest.approx(20 + 10 + 20)
    assert mouth_to_ear_delay_ms(40.0, 5.0, packet_ms=10.0, extra_ms=19.0) == pytest.approx(59)
    assert mouth_to_ear_delay_ms(None, None) == pytest.approx(20)


def test_mos_for_a_clean_pcmu_leg() -> None:
    stats = MediaStats("PCMU", rx_packets=500, tx_packets=500, rx_loss=0, jitter_ms=1.0, rtt_ms=2.0)
    # one-way 1 + 2 + 20 = 23 ms: Id 0.552, no loss.
    assert mos_for(stats) == round(mos_from_r(93.2 - 0.024 * 23), 2)
    assert mos_for(stats) == pytest.approx(4.40, abs=0.005)


def test_mos_for_counts_loss_against_expected_packets() -> None:
    stats = MediaStats("PCMA", rx_packets=950, rx_loss=50, jitter_ms=4.0, rtt_ms=30.0)
    delay = 15 + 8 + 20 + 19
    expected = round(estimate_mos(CODECS["pcma"], 5.0, delay), 2)
    assert mos_for(stats, extra_delay_ms=19.0) == expected
    assert mos_for(stats, extra_delay_ms=19.0) < mos_for(stats)  # type: ignore[operator]


def test_negative_rtcp_loss_means_duplicates_not_loss() -> None:
    """RFC 3550 §6.4.1: the cumulative loss is negative when duplicates arrived."""
    dup = MediaStats("PCMU", rx_packets=500, rx_loss=-3, jitter_ms=1.0, rtt_ms=2.0)
    clean = MediaStats("PCMU", rx_packets=500, rx_loss=0, jitter_ms=1.0, rtt_ms=2.0)
    assert mos_for(dup) == mos_for(clean)


@pytest.mark.parametrize(
    "stats",
    [
        MediaStats("GSM", rx_packets=500),  # no planning values
        MediaStats(None, rx_packets=500),
        MediaStats("PCMU", rx_packets=0, rx_loss=0),  # no media at all
        MediaStats("PCMU", rx_packets=0, rx_loss=20),  # everything lost: nothing to rate
        MediaStats("PCMU", rx_packets=100, rtt_ms=-90.0),  # confused RTCP
        MediaStats("PCMU", rx_packets=500, rx_loss=None),  # a relay that saw no RTCP
    ],
)
def test_mos_for_declines_what_it_cannot_rate(stats: MediaStats) -> None:
    assert mos_for(stats) is None
