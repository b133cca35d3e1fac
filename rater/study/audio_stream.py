"""Streaming a session's audio file with HTTP Range requests.

Browsers seek in long recordings by asking for byte ranges, so seeking to minute 45 of a 60-minute
session fetches only the bytes needed. Werkzeug's conditional ``send_file`` implements the
protocol (206 Partial Content with ``Content-Range``, ``Accept-Ranges: bytes``, ``ETag`` and
``Last-Modified``, ``If-Range``, ``If-None-Match``/``If-Modified-Since`` -> 304); this module adds
the safe path lookup and a proper 416 answer (with ``Content-Range: bytes */size``, which the
generic error page would otherwise drop).
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from flask import Response, current_app, send_file
from werkzeug.exceptions import NotFound, RequestedRangeNotSatisfiable

from rater.study.audio import AudioPathError, resolve_audio_path

AUDIO_TYPES = {
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/ogg",
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".webm": "audio/webm",
}


def audio_file(relative: str | None, audio_dir: str | Path | None = None) -> Path:
    """The file of a session's ``audio_path`` inside the audio folder; NotFound otherwise.

    Paths that would leave the folder (``..``, absolute, backslashes, NUL) are answered exactly
    like missing files, so the answer reveals nothing about the file system.
    """
    if not relative:
        raise NotFound()
    folder = audio_dir if audio_dir is not None else current_app.config["RATER_AUDIO_DIR"]
    try:
        path = resolve_audio_path(folder, relative)
    except AudioPathError:
        raise NotFound() from None
    if not path.is_file():
        raise NotFound()
    return path


def stream_audio(path: Path) -> Response:
    """Answer the current request for ``path`` with Range and conditional-request support."""
    mimetype = AUDIO_TYPES.get(path.suffix.lower()) or (
        mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    )
    try:
        response = send_file(path, mimetype=mimetype, conditional=True, etag=True, max_age=0)
    except RequestedRangeNotSatisfiable:
        response = Response(status=416)
        response.headers["Content-Range"] = f"bytes */{path.stat().st_size}"
        response.headers["Accept-Ranges"] = "bytes"
        return response
    # Private: the recording must never sit in a shared cache; revalidation is cheap (ETag).
    response.headers["Cache-Control"] = "private, no-cache"
    response.headers["Accept-Ranges"] = "bytes"
    return response
