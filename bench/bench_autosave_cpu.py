"""CPU per autosave in one process: the app's Python and the PostgreSQL backends' CPU.

Run from the root of the code tree to measure (it imports ``rater`` from the working
directory), e.g. to compare two commits with one virtualenv::

    git archive <commit> | tar -x -C /tmp/old && cp bench/bench_autosave_cpu.py /tmp/old/bench/
    python bench/bench_autosave_cpu.py 300; (cd /tmp/old && python bench/bench_autosave_cpu.py 300)

One rater (Flask test client) saves ``n`` batches of two scores, one note and the audio
position after 60 batches to warm up; printed per save: the process's CPU time (app and test
client), the CPU of the database's backends (``/proc``, so the server must run on this host)
and the wall time. CPU time depends far less on other load on the host than throughput does:
alternate the trees a few times and compare. A scratch database ``rater_cpu_...`` is created on
``--server`` (default 127.0.0.1:5432) and dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

sys.path.insert(0, os.getcwd())

from sqlalchemy import text

from tests.load import simulation as sim
from tests.support.databases import scratch_postgres_database

TICK = os.sysconf("SC_CLK_TCK")
WARM_UP = 60


def backend_cpu(pids: list[int]) -> float:
    """User + system CPU seconds of these processes so far."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICK


class Rater:
    """A logged-in test client sending valid batches (each change based on the last value)."""

    def __init__(self, app, spec: sim.RaterSpec, items: list[str]) -> None:
        self.client = app.test_client()
        login = {"username": spec.username, "password": sim.PASSWORD}
        assert self.client.post("/login", data=login).status_code == 302
        self.url = f"/assignments/{spec.assignment_id}/autosave"
        self.items, self.rng = items, random.Random(1)
        self.scores: dict[str, int] = {}
        self.version, self.seq = 1, 0

    def save(self, index: int) -> None:
        self.seq += 1
        changes = [
            {"op": "score", "item": code, "value": self.rng.randint(0, 4),
             "base": self.scores.get(code)}
            for code in self.rng.sample(self.items, 2)
        ]  # fmt: skip
        changes.append(
            {"op": "note.put", "client_id": f"n{index % 20}", "seconds": index % 60,
             "text": f"note {index}"}
        )  # fmt: skip
        changes.append({"op": "position", "seconds": float(index % 60)})
        body = {"client": "cpu", "seq": self.seq, "base_version": self.version, "changes": changes}
        response = self.client.post(self.url, json=body)
        assert response.status_code == 200, response.json
        self.version = response.json["version"]
        self.scores.update({c["item"]: c["value"] for c in changes[:2]})


def measure(database_url: str, n: int) -> str:
    from rater import create_app
    from rater.cli import upgrade_schema
    from rater.config import TestConfig
    from rater.extensions import db

    app = create_app(TestConfig(database_url))
    with app.app_context():
        upgrade_schema()
        specs = sim.build_study(1)
        rater = Rater(app, specs[0], sim.item_codes())
        db.session.remove()
        for index in range(WARM_UP):
            rater.save(index)
        with db.engine.connect() as connection:
            query = "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            pids = list(connection.scalars(text(query)))
        cpu, server, wall = time.process_time(), backend_cpu(pids), time.perf_counter()
        for index in range(WARM_UP, WARM_UP + n):
            rater.save(index)
        cpu, server = time.process_time() - cpu, backend_cpu(pids) - server
        wall = time.perf_counter() - wall
        db.engine.dispose()
    return (
        f"{os.getcwd()}: per save: Python {cpu / n * 1000:.2f} ms, PostgreSQL "
        f"{server / n * 1000:.2f} ms, wall {wall / n * 1000:.1f} ms ({n} saves)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("n", type=int, nargs="?", default=300, help="saves measured")
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    with scratch_postgres_database(args.server, prefix="rater_cpu") as url:
        print(measure(url, args.n))


if __name__ == "__main__":
    main()
