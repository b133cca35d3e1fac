"""Waveform peaks: computed in blocks, equal to a direct computation, cached per file content."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

from rater.study import peaks as peaks_module
from rater.study.peaks import PeaksError, compute_peaks, peaks_for

AUDIO = Path(__file__).resolve().parents[2] / "audio"


def _direct(path: Path, per_second: int) -> list[int]:
    data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    mono = data.mean(axis=1)
    per_peak = max(1, rate // per_second)
    out = []
    for start in range(0, len(mono), per_peak):
        chunk = mono[start : start + per_peak]
        out += [chunk.min(), chunk.max()]
    return [int(np.clip(np.round(v * 127), -128, 127)) for v in out]


@pytest.mark.parametrize(("seconds", "rate", "channels"), [(3.37, 8000, 1), (61.05, 16000, 2)])
def test_peaks_equal_a_direct_computation(tmp_path, seconds, rate, channels):
    rng = np.random.default_rng(4)
    frames = int(seconds * rate)
    t = np.arange(frames) / rate
    signal = 0.6 * np.sin(2 * np.pi * 220 * t) * np.linspace(0, 1, frames)
    noise = rng.normal(0, 0.05, (frames, channels))
    wav = tmp_path / "x.wav"
    soundfile.write(str(wav), np.clip(signal[:, None] + noise, -1, 1), rate, subtype="FLOAT")
    peaks = compute_peaks(wav, per_second=20)
    assert peaks["data"] == _direct(wav, 20)
    assert peaks["length"] == len(peaks["data"]) // 2 == -(-frames // (rate // 20))
    assert peaks["duration"] == pytest.approx(seconds, abs=1e-3)
    assert peaks["samples_per_pixel"] == rate // 20 and peaks["bits"] == 8


def test_demo_recordings_decode():
    peaks = compute_peaks(AUDIO / "demo-session-a.ogg")
    assert peaks["duration"] == pytest.approx(68.3, abs=0.1)
    assert max(peaks["data"]) > 10  # there is sound in it


def test_not_audio_is_a_clear_error(tmp_path):
    bad = tmp_path / "notes.ogg"
    bad.write_text("not audio")
    with pytest.raises(PeaksError, match=r"notes\.ogg: cannot be decoded"):
        compute_peaks(bad)


def test_peaks_are_cached_and_renewed_when_the_file_changes(tmp_path, monkeypatch):
    wav = tmp_path / "s.wav"
    soundfile.write(str(wav), np.zeros(8000), 8000)
    calls = []
    real = peaks_module.compute_peaks
    monkeypatch.setattr(peaks_module, "compute_peaks", lambda p: calls.append(p) or real(p))
    cache = tmp_path / "cache"
    first = peaks_for(wav, cache)
    assert peaks_for(wav, cache) == first and len(calls) == 1
    assert [json.loads(p.read_text()) for p in cache.glob("*.json")] == [first]
    soundfile.write(str(wav), np.full(16000, 0.5), 8000)
    second = peaks_for(wav, cache)
    assert len(calls) == 2 and second["duration"] == 2.0 and max(second["data"]) == 64
