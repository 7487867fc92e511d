"""Speech quality of a leg as a MOS estimate: a simplified E-model (ITU-T G.107).

Pure arithmetic, no I/O: the worker reads RTCP figures (:class:`~switch.call.calllog.MediaStats`)
at the end of a leg and :func:`mos_for` turns them into the MOS the records and metrics show.

The model
---------
G.107 rates a connection on the R scale (0..100) as ``R = Ro − Is − Id − Ie,eff + A``.
With every parameter at its G.107 default (§7.1, §7.2, Table 1: no circuit noise,
no room noise, standard loudness ratings, echo well controlled) ``Ro − Is`` comes
to 93.2, and the advantage factor A is 0 for wired phones (§7.5). What is left:

    R = 93.2 − Id − Ie,eff

* ``Id``, the delay impairment (G.107 §7.3, which builds it from echo paths and the
  mouth-to-ear delay Ta). With echo cancelled, the usual piecewise fit of Cole and
  Rosenbluth ("Voice over IP performance monitoring", ACM CCR 31(2), 2001):
  ``Id = 0.024·d + 0.11·(d − 177.3)·H(d − 177.3)``, d the one-way delay in ms, H the
  step function: delay hurts a little from the start and much more past ~177 ms.
* ``Ie,eff``, the effective equipment impairment (G.107 §7.4):
  ``Ie,eff = Ie + (95 − Ie) · Ppl / (Ppl/BurstR + Bpl)``, with the codec's intrinsic
  impairment Ie and loss robustness Bpl (planning values from ITU-T G.113 Appendix I),
  Ppl the packet loss in percent and BurstR the burst ratio (1 for random loss).
* MOS from R (G.107 Annex B): 1 below R = 0, 4.5 above R = 100, between them
  ``1 + 0.035·R + R·(R − 60)·(100 − R)·7·10⁻⁶``. That cubic dips to 0.99 for
  0 < R < 6.5; we clamp it at 1 so that the MOS never rises when R falls.

Simplifications, so that nobody reads more into the figure than there is
-----------------------------------------------------------------------
* Defaults for everything the switch cannot see (loudness, noise, sidetone, echo).
* Loss is taken as random (BurstR = 1): RTCP reports only a count. Bursty loss is
  worse than this estimate.
* RTCP gives no mouth-to-ear delay. :func:`mouth_to_ear_delay_ms` puts one together:
  half the RTCP round-trip time (network), twice the mean interarrival jitter (what
  an adaptive jitter buffer typically holds), one packet time (packetisation) and
  what the caller adds (e.g. the ~19 ms of our own conference bridge, DESIGN.md).
  Without an RTT the network part counts as 0, which flatters the figure.
* Only codecs with ITU planning values get an estimate (:data:`CODECS`): G.711
  (PCMU, PCMA), with the Bpl of G.711 with packet-loss concealment, since pjmedia
  conceals lost G.711 frames. G.722 is wideband, which the narrowband E-model
  does not rate (G.107.1 does, on another scale); it is rated like G.711 here, a
  provisional floor: it sounds at least as good. GSM, Speex and iLBC have no complete
  ITU planning values (G.113 gives GSM-FR an Ie of 20 but no Bpl), so
  :func:`mos_for` returns None for them rather than an invented figure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from switch.call.calllog import MediaStats
from switch.errors import MediaQualityError

R_DEFAULT: Final = 93.2
"""R of a connection with every G.107 default and no delay, loss or codec impairment."""

DELAY_KNEE_MS: Final = 177.3
"""One-way delay past which each further millisecond costs far more (Cole & Rosenbluth)."""


@dataclass(frozen=True, slots=True)
class CodecImpairment:
    """E-model planning values of one codec (ITU-T G.113 Appendix I)."""

    ie: float  # equipment impairment without loss
    bpl: float  # packet-loss robustness: higher is more robust
    source: str  # where the numbers come from, for people who ask


G711_PLC = CodecImpairment(0.0, 25.1, "G.113 App. I: G.711 with packet-loss concealment")

CODECS: Final[Mapping[str, CodecImpairment]] = {
    "pcmu": G711_PLC,
    "pcma": G711_PLC,
    "g722": CodecImpairment(0.0, 25.1, "provisional: wideband, rated as G.711 with PLC"),
}
"""Codecs with planning values, by lower-case RTP encoding name (as pjsua reports it)."""


def codec_impairment(codec: str | None) -> CodecImpairment | None:
    """Planning values for an encoding name ("PCMU", "PCMU/8000/1"), None if we have none."""
    if not codec:
        return None
    return CODECS.get(codec.split("/", 1)[0].strip().lower())


def delay_impairment(one_way_ms: float) -> float:
    """Id for a one-way (mouth-to-ear) delay in ms, echo cancelled (G.107 §7.3, simplified)."""
    if one_way_ms < 0:
        raise MediaQualityError(f"one-way delay {one_way_ms!r} ms is negative")
    excess = max(0.0, one_way_ms - DELAY_KNEE_MS)
    return 0.024 * one_way_ms + 0.11 * excess


def effective_equipment_impairment(
    codec: CodecImpairment, loss_percent: float, burst_ratio: float = 1.0
) -> float:
    """Ie,eff for a codec at a packet loss in percent (G.107 §7.4)."""
    if not 0.0 <= loss_percent <= 100.0:
        raise MediaQualityError(f"packet loss {loss_percent!r} % is not within 0..100")
    if burst_ratio < 1.0:
        # BurstR is defined as >= 1: 1 for random loss, more for bursty loss (G.107 §7.4).
        raise MediaQualityError(f"burst ratio {burst_ratio!r} is below 1")
    return codec.ie + (95.0 - codec.ie) * loss_percent / (loss_percent / burst_ratio + codec.bpl)


def r_factor(
    codec: CodecImpairment, loss_percent: float, one_way_ms: float, burst_ratio: float = 1.0
) -> float:
    """The transmission rating R = 93.2 − Id − Ie,eff (not clamped: it can fall below 0)."""
    ie_eff = effective_equipment_impairment(codec, loss_percent, burst_ratio)
    return R_DEFAULT - delay_impairment(one_way_ms) - ie_eff


def mos_from_r(r: float) -> float:
    """MOS (conversational quality, 1..4.5) from R, G.107 Annex B, clamped at 1."""
    if r <= 0.0:
        return 1.0
    if r >= 100.0:
        return 4.5
    mos = 1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6
    return max(1.0, mos)


def estimate_mos(
    codec: CodecImpairment, loss_percent: float, one_way_ms: float, burst_ratio: float = 1.0
) -> float:
    """MOS for a codec, packet loss (%) and one-way delay (ms)."""
    return mos_from_r(r_factor(codec, loss_percent, one_way_ms, burst_ratio))


def mouth_to_ear_delay_ms(
    rtt_ms: float | None,
    jitter_ms: float | None,
    packet_ms: float = 20.0,
    extra_ms: float = 0.0,
) -> float:
    """A one-way delay estimate from RTCP figures (see the module docstring for the parts)."""
    network = 0.0 if rtt_ms is None else rtt_ms / 2.0
    jitter_buffer = 0.0 if jitter_ms is None else 2.0 * jitter_ms
    return network + jitter_buffer + packet_ms + extra_ms


def mos_for(
    stats: MediaStats, *, packet_ms: float = 20.0, extra_delay_ms: float = 0.0
) -> float | None:
    """The MOS estimate for a leg's RTCP figures; None when there is nothing sound to rate.

    None when the codec has no planning values, when no packet arrived, when nobody
    measured the loss (``rx_loss`` None), or when the figures give a negative delay (a
    confused peer's RTCP).
    """
    codec = codec_impairment(stats.codec)
    if codec is None or stats.rx_packets <= 0 or stats.rx_loss is None:
        return None  # no loss figure (a relay that saw no RTCP): nothing sound to rate
    # RTCP's cumulative loss goes negative when duplicates outnumber losses (RFC 3550
    # §6.4.1): that is no loss.
    lost = max(0, stats.rx_loss)
    delay = mouth_to_ear_delay_ms(stats.rtt_ms, stats.jitter_ms, packet_ms, extra_delay_ms)
    if delay < 0:
        return None
    return round(estimate_mos(codec, 100.0 * lost / (stats.rx_packets + lost), delay), 2)


__all__ = [
    "CODECS",
    "CodecImpairment",
    "codec_impairment",
    "delay_impairment",
    "effective_equipment_impairment",
    "estimate_mos",
    "mos_for",
    "mos_from_r",
    "mouth_to_ear_delay_ms",
    "r_factor",
]
