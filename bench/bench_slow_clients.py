"""Slow clients against ``rater serve``, alone and behind nginx: how long a normal request waits.

Run: ``python bench/bench_slow_clients.py`` (``--slow 10`` connections, ``--hold 15`` seconds,
``--workers 2 --threads 4`` as ``rater serve``'s defaults). It builds an empty SQLite study,
starts ``rater serve`` on a free loopback port and, when nginx is on the PATH (Debian:
``apt-get install nginx-light``), an nginx in front of it configured as README's Deployment
section says. For each target it measures:

* baseline: the median time of ``GET /login`` (a page rendered by the app) with nobody else;
* with slow clients: ``--slow`` connections each send the start of a request (``GET /login
  HTTP/1.1`` and one header) and then nothing more, held open ``--hold`` seconds; meanwhile one
  normal ``GET /login`` is timed (it gives up after ``--hold`` + 10 s).

Printed: the times and the slowed request's time as a ratio of the same target's baseline. The
slow connections are closed after ``--hold`` seconds, so a request that waited for them shows
a time of about ``--hold``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from tests.load import simulation as sim  # noqa: E402

PARTIAL_REQUEST = b"GET /login HTTP/1.1\r\nHost: rater.test\r\n"  # no blank line: unfinished

NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    client_header_timeout 10s;
    client_body_timeout 10s;
    client_max_body_size 32m;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass {upstream};
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
            proxy_read_timeout 60s;
        }}
    }}
}}
"""


def timed_get(base: str, timeout: float) -> float | None:
    """Seconds for one ``GET /login`` on a new connection, or None when no answer came."""
    host, port = base.removeprefix("http://").split(":")
    started = time.perf_counter()
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as sock:
            sock.sendall(b"GET /login HTTP/1.1\r\nHost: rater.test\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
    except TimeoutError:
        return None
    if not answer.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"unexpected answer: {answer[:80]!r}")
    return time.perf_counter() - started


@contextmanager
def slow_clients(base: str, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections that started a request and never finish it."""
    host, port = base.removeprefix("http://").split(":")
    sockets = []
    try:
        for _ in range(count):
            sock = socket.create_connection((host, int(port)), timeout=5)
            sock.sendall(PARTIAL_REQUEST)
            sockets.append(sock)
        time.sleep(0.5)  # the server has accepted them and is waiting for the rest
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def measure(name: str, base: str, args: argparse.Namespace) -> dict[str, float | None]:
    timed_get(base, 10)  # warm up the workers
    baseline = statistics.median(timed_get(base, 10) or 10 for _ in range(args.repeat))
    with slow_clients(base, args.slow):
        started = time.perf_counter()
        # The held connections close when the block ends; a request still waiting by then is
        # answered afterwards, which the second timeout catches.
        waited = timed_get(base, args.hold)
        if waited is None:
            time.sleep(max(0.0, args.hold - (time.perf_counter() - started)))
    if waited is None:
        late = timed_get(base, 10)
        waited = (time.perf_counter() - started) if late is not None else None
        blocked = True
    else:
        blocked = False
    print(f"{name:<28} baseline {baseline * 1000:7.1f} ms   with {args.slow} slow clients: "
          + (f"{waited * 1000:9.1f} ms" if waited is not None else "no answer")
          + (f"  (blocked until they closed, {args.hold:.0f} s)" if blocked else "")
          + (f"   ratio {waited / baseline:8.1f} x baseline" if waited else ""))  # fmt: skip
    return {"baseline": baseline, "slowed": waited}


@contextmanager
def nginx_in_front(upstream: str) -> Iterator[str | None]:
    binary = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if binary is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="rater-nginx-") as prefix:
        port = sim.free_port()
        conf = Path(prefix) / "nginx.conf"
        conf.write_text(NGINX_CONF.format(prefix=prefix, port=port, upstream=upstream))
        process = subprocess.Popen([binary, "-p", prefix, "-c", str(conf)],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                    break
                time.sleep(0.1)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slow", type=int, default=10, help="slow connections")
    parser.add_argument("--hold", type=float, default=15.0, help="seconds they stay open")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=20, help="requests for the baseline")
    args = parser.parse_args()
    print(f"rater serve: {args.workers} worker(s) x {args.threads} thread(s); "
          f"{args.slow} slow clients held {args.hold:.0f} s")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="rater-slow-") as folder:
        url = f"sqlite:///{Path(folder) / 'bench.sqlite'}"
        env = {**os.environ, "DATABASE_URL": url}
        subprocess.run([sys.executable, "-c", "from rater.cli import main; main()", "init-db"],
                       env=env, cwd=PROJECT_ROOT, check=True, capture_output=True)  # fmt: skip
        server = sim.Server(url, workers=args.workers, threads=args.threads)
        with server:
            measure("rater serve alone", server.url, args)
            with nginx_in_front(server.url) as proxied:
                if proxied is None:
                    print("nginx is not installed: the measurement behind nginx is skipped")
                else:
                    measure("rater serve behind nginx", proxied, args)


if __name__ == "__main__":
    main()
