"""Announcements: espeak-ng + sox make 8 kHz mono WAVs, cached; recordings win by name."""

from __future__ import annotations

import array
import math
import wave
from pathlib import Path

import pytest

from switch.errors import AnnouncementError
from switch.worker.announcements import (
    Announcements,
    Prompt,
    PromptCache,
    cache_key,
    is_name,
    wav_seconds,
    write_tone,
)


def rms(path: Path) -> float:
    with wave.open(str(path), "rb") as wav:
        samples = array.array("h", wav.readframes(wav.getnframes()))
    return math.sqrt(sum(s * s for s in samples) / max(1, len(samples)))


def test_spoken_prompt_is_8khz_mono_and_about_as_long_as_the_words(tmp_path: Path) -> None:
    ann = Announcements(tmp_path)
    short = ann.synthesize("de", "Hallo")
    long = ann.synthesize(
        "de", "Wir sind in Betriebsferien bis zum dritten Januar. Bitte rufen Sie später an."
    )
    for path in (short, long):
        with wave.open(str(path), "rb") as wav:
            assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
    # ~13 words at espeak's ~175 words/min: a few seconds, and clearly longer than one word.
    assert 0.2 < wav_seconds(short) < 2.0
    assert 3.0 < wav_seconds(long) < 10.0
    assert rms(long) > 500  # speech, not silence
    assert long.parent.name == ".tts"
    assert long.stem == cache_key(
        "de", "Wir sind in Betriebsferien bis zum dritten Januar. Bitte rufen Sie später an."
    )


def test_cache_is_reused_and_keyed_by_voice(tmp_path: Path) -> None:
    ann = Announcements(tmp_path)
    first = ann.synthesize("de", "Guten Tag")
    stamp = first.stat().st_mtime_ns
    assert ann.synthesize("de", "Guten Tag") == first
    assert first.stat().st_mtime_ns == stamp  # not made again
    assert ann.synthesize("en", "Guten Tag") != first


def test_recording_takes_precedence_by_name(tmp_path: Path) -> None:
    ann = Announcements(tmp_path)
    own = write_tone(tmp_path / "announcements" / "tischlerei" / "ferien.wav", seconds=1.0)
    assert ann.lookup(Prompt("tischlerei", "ferien")) == own
    assert ann.lookup(Prompt("tischlerei", "ferien.wav")) == own
    assert ann.lookup(Prompt("other", "ferien")) is None  # another tenant's file is not theirs
    assert ann.lookup(Prompt("tischlerei", "../tischlerei/ferien")) is None


def test_bad_voice_and_empty_text_are_errors(tmp_path: Path) -> None:
    ann = Announcements(tmp_path)
    with pytest.raises(AnnouncementError, match=r"voice 'fr' unknown"):
        ann.synthesize("fr", "Bonjour")
    with pytest.raises(AnnouncementError, match="empty"):
        ann.synthesize("de", "  ")
    missing = Announcements(tmp_path, espeak="no-such-espeak")
    with pytest.raises(AnnouncementError, match="no-such-espeak"):
        missing.synthesize("de", "Hallo")


def test_prompt_cache_makes_prompts_in_the_background(tmp_path: Path) -> None:
    cache = PromptCache(Announcements(tmp_path))
    prompt = Prompt("t", "Anruf für Tischlerei Müller")
    try:
        assert cache.ready(prompt) is None  # not made yet: queued, never blocks
        assert cache.wait_idle(20)
        path = cache.ready(prompt)
        assert path is not None
        assert wav_seconds(path) > 1.0
        bad = Prompt("t", "x", voice="xx")
        cache.prepare([bad])
        assert cache.wait_idle(5)
        assert cache.ready(bad) is None
        assert "unknown" in (cache.failure(bad) or "")
    finally:
        cache.close()


def test_tone_and_names() -> None:
    assert is_name("betriebsferien")
    assert is_name("ansage_2.wav")
    for bad in ("Wir sind in Betriebsferien", "../x", ""):
        assert not is_name(bad)


def test_beep_is_a_loud_300ms_tone(tmp_path: Path) -> None:
    beep = Announcements(tmp_path).beep()
    assert wav_seconds(beep) == pytest.approx(0.3, abs=0.01)
    assert rms(beep) > 5000
