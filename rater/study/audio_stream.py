"""Streaming a session's audio file with HTTP Range requests.

Browsers seek in long recordings by asking for byte ranges, so seeking to minute 45 of a 60-minute
session fetches only the bytes needed. Werkzeug's conditional ``send_file`` implements the
protocol (206 Partial Content with ``Content-Range``, ``Accept-Ranges: bytes``, ``ETag`` and
``Last-Modified``, ``If-Range``, ``If-None-Match``/``If-Modified-Since`` -> 304); this module adds
the safe path lookup, RFC 9110's rule for Range headers it cannot use (ignored: 200 with the whole
file, where werkzeug answers 416), a proper 416 answer (with ``Content-Range: bytes */size``,
which the generic error page would otherwise drop), and ``Cache-Control: no-store`` on every
answer: recordings are clinical data and must not be kept by a browser or proxy cache.
"""

from __future__ import annotations

import mimetypes
import re
from pathlib import Path

from flask import Response, current_app, request
from werkzeug.exceptions import NotFound, RequestedRangeNotSatisfiable
from werkzeug.utils import send_file
from werkzeug.wrappers import Response as BaseResponse

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


NO_STORE = "no-store"

# RFC 9110 §14.1.2: byte-range-set = 1#( int-range / suffix-range ); int-range = first-pos "-"
# [ last-pos ]; suffix-range = "-" suffix-length; the positions are ASCII digits.
_RANGE_SPEC = re.compile(r"([0-9]+)-([0-9]*)|-([0-9]+)", re.ASCII)


def stream_audio(path: Path) -> BaseResponse:
    """Answer the current request for ``path`` with Range and conditional-request support."""
    mimetype = AUDIO_TYPES.get(path.suffix.lower()) or (
        mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    )
    environ = {key: value for key, value in request.environ.items() if key != "HTTP_RANGE"}
    size = path.stat().st_size
    usable = _usable_range(request.headers.get("Range"), size)
    if usable is not None:
        environ["HTTP_RANGE"] = usable
    try:
        if usable is not None and not _satisfiable(usable, size):
            # decided here: werkzeug releases differ on edge cases such as "bytes=-0"
            raise RequestedRangeNotSatisfiable(length=size)
        response = send_file(
            path, environ, mimetype=mimetype, conditional=True, etag=True, max_age=0,
            response_class=current_app.response_class,
        )  # fmt: skip
    except RequestedRangeNotSatisfiable:
        response = Response(status=416)
        response.headers["Content-Range"] = f"bytes */{size}"
    response.headers["Cache-Control"] = NO_STORE  # 200, 206, 304 and 416 alike
    response.headers["Accept-Ranges"] = "bytes"
    return response


def _usable_range(header: str | None, size: int) -> str | None:
    """The Range header to answer, written the way werkzeug parses it, or None to ignore it.

    Ignored, as RFC 9110 §14.2 has it: anything but valid syntax in the ``bytes`` unit (a
    server ignores a range unit it does not understand, and an invalid ranges-specifier is
    no range request), and several ranges of which one can be served (the server MAY ignore
    the header; werkzeug has no multipart answer). Left: one range (206, or 416 when it lies
    beyond the end of the file) or ranges that are all unsatisfiable (416).
    """
    if header is None:
        return None
    unit, equals, ranges = header.strip().partition("=")
    specs = [spec.strip(" \t") for spec in ranges.split(",")]
    specs = [spec for spec in specs if spec]  # the list rule allows empty elements
    matches = [m for m in map(_RANGE_SPEC.fullmatch, specs) if m is not None]
    if not equals or unit.lower() != "bytes" or not specs or len(matches) < len(specs):
        return None
    if any(m[1] is not None and m[2] and int(m[2]) < int(m[1]) for m in matches):
        return None  # an int-range whose last-pos is below its first-pos is invalid
    if len(matches) > 1 and any(_spec_satisfiable(m, size) for m in matches):
        return None
    return "bytes=" + ",".join(m[0] for m in matches)


def _spec_satisfiable(match: re.Match[str], size: int) -> bool:
    """A first-pos inside the file, or a suffix of at least one byte of a non-empty file."""
    if match[1] is not None:
        return int(match[1]) < size
    return int(match[3]) > 0 and size > 0


def _satisfiable(usable: str, size: int) -> bool:
    """Whether any range of a header ``_usable_range`` returned can be served."""
    specs = usable.removeprefix("bytes=").split(",")
    return any(_spec_satisfiable(_parsed(spec), size) for spec in specs)


def _parsed(spec: str) -> re.Match[str]:
    """A range spec ``_usable_range`` let through (so it matches)."""
    match = _RANGE_SPEC.fullmatch(spec)
    assert match is not None
    return match
