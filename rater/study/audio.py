"""Audio files: resolving paths safely inside the audio folder and reading durations."""

from __future__ import annotations

import wave
from pathlib import Path


class AudioPathError(ValueError):
    """A path that would leave the audio folder, or is otherwise unusable."""


def resolve_audio_path(audio_dir: str | Path, relative: str) -> Path:
    """The absolute path of ``relative`` inside ``audio_dir``; refuses anything that escapes it.

    Absolute paths, ``..`` segments, backslashes and NUL bytes are refused before touching the
    file system; the resolved path (symlinks followed) must still lie inside the folder.
    """
    if not relative or "\x00" in relative or "\\" in relative:
        raise AudioPathError(f"invalid audio path {relative!r}")
    candidate = Path(relative)
    if candidate.is_absolute() or any(part in ("..", "") for part in candidate.parts):
        raise AudioPathError(f"audio path {relative!r} must be relative to the audio folder")
    root = Path(audio_dir).resolve()
    resolved = (root / candidate).resolve()
    if resolved != root and root not in resolved.parents:
        raise AudioPathError(f"audio path {relative!r} leaves the audio folder")
    return resolved


def read_duration(path: Path) -> float | None:
    """Duration in seconds of a WAV, MP3, OGG, FLAC, M4A… file; None when it cannot be read."""
    if path.suffix.lower() == ".wav":
        try:
            with wave.open(str(path), "rb") as w:
                return w.getnframes() / float(w.getframerate())
        except (wave.Error, EOFError, OSError):
            return None
    try:
        import mutagen

        info = mutagen.File(str(path))
    except Exception:  # mutagen raises many kinds for damaged files
        return None
    if info is None or getattr(info, "info", None) is None:
        return None
    return float(info.info.length)
