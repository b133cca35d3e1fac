"""Waveform peaks of a recording, computed once on the server (not by the browser).

Decoding a 60-minute recording in the browser to draw its waveform would take seconds and
hundreds of megabytes; instead the server reads the file once, in blocks, and keeps the minimum
and maximum of each short stretch (``PEAKS_PER_SECOND`` stretches per second of audio) as 8-bit
integers, in the JSON layout of BBC's ``audiowaveform`` (version 2), which waveform players
read directly::

    {"version": 2, "channels": 1, "sample_rate": 22050, "samples_per_pixel": 2205,
     "bits": 8, "length": 681, "duration": 68.28, "data": [min0, max0, min1, max1, ...]}

Channels are mixed down to one. The result depends only on the file's bytes, so it is cached by
the file's size and modification time (``peaks_for``).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

PEAKS_PER_SECOND = 20
FORMAT_VERSION = 2
_BLOCK_SECONDS = 30  # decode in blocks: memory stays bounded for long recordings


class PeaksError(ValueError):
    """The file cannot be decoded (unknown format, damaged)."""


def compute_peaks(path: Path, per_second: int = PEAKS_PER_SECOND) -> dict[str, Any]:
    """The peaks of one audio file (see the module docstring)."""
    try:
        info = soundfile.info(str(path))
    except (RuntimeError, soundfile.LibsndfileError) as exc:
        raise PeaksError(f"{Path(path).name}: cannot be decoded ({exc})") from None
    rate = int(info.samplerate)
    per_peak = max(1, rate // per_second)
    lows: list[np.ndarray] = []
    highs: list[np.ndarray] = []
    carry = np.zeros(0, dtype="float32")
    block = per_peak * per_second * _BLOCK_SECONDS
    for data in soundfile.blocks(str(path), blocksize=block, dtype="float32", always_2d=True):
        mono = np.concatenate([carry, data.mean(axis=1)])
        whole = len(mono) // per_peak * per_peak
        chunks = mono[:whole].reshape(-1, per_peak)
        lows.append(chunks.min(axis=1))
        highs.append(chunks.max(axis=1))
        carry = mono[whole:]
    if len(carry):
        lows.append(carry.min(keepdims=True))
        highs.append(carry.max(keepdims=True))
    low = np.concatenate(lows) if lows else np.zeros(0)
    high = np.concatenate(highs) if highs else np.zeros(0)
    data = np.empty(2 * len(low), dtype="int64")
    data[0::2] = _to_8bit(low)
    data[1::2] = _to_8bit(high)
    return {
        "version": FORMAT_VERSION,
        "channels": 1,
        "sample_rate": rate,
        "samples_per_pixel": per_peak,
        "bits": 8,
        "length": len(low),
        "duration": round(float(info.frames) / rate, 3),
        "data": data.tolist(),
    }


def _to_8bit(values: np.ndarray) -> np.ndarray:
    return np.clip(np.round(values * 127), -128, 127).astype("int64")


def peaks_for(audio: Path, cache_dir: Path) -> dict[str, Any]:
    """The peaks of ``audio``, computed on the first call and read from ``cache_dir`` after."""
    return json.loads(peaks_file(audio, cache_dir).read_text(encoding="utf-8"))


def peaks_file(audio: Path, cache_dir: Path) -> Path:
    """The cached peaks JSON file of ``audio`` in ``cache_dir``, computed when missing.

    The cache key is the file's path, size and modification time: a replaced recording gets new
    peaks. The cache file is written atomically (a reader never sees half a file). Serving this
    file as it is spares parsing and re-encoding half a megabyte per request.
    """
    stat = audio.stat()
    key = f"{audio.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{PEAKS_PER_SECOND}"
    name = hashlib.sha256(key.encode()).hexdigest()[:32] + ".json"
    cached = cache_dir / name
    if cached.exists():
        return cached
    peaks = compute_peaks(audio)
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps(peaks, separators=(",", ":")), encoding="utf-8")
    partial.replace(cached)
    return cached
