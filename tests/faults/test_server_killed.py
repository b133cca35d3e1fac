"""The server is killed with SIGKILL in the middle of the load and restarted."""

from __future__ import annotations

import time

import pytest

pytestmark = [pytest.mark.load]

SECONDS = 12
KILL_AFTER = 4
DOWN_FOR = 2


def test_sigkill_mid_load_loses_no_acknowledged_save(database_url, study, sim):
    specs, items = study
    checks: dict[str, object] = {}

    def kill_and_restart(raters) -> None:
        time.sleep(KILL_AFTER)
        acknowledged_before = sum(r.stats.acknowledged for r in raters)
        server.kill()
        # Nothing writes now: the database must be consistent and hold every acknowledged
        # save (or, for the batch in flight at the kill, possibly that batch's values).
        checks["acknowledged before the kill"] = acknowledged_before
        checks["consistency"] = sim.consistency_problems(database_url)
        checks["verification"] = sim.verify(database_url, raters, allow_in_flight=True)
        time.sleep(DOWN_FOR)
        server.start()

    server = sim.Server(database_url, workers=2, threads=4)
    with server:
        raters, stats = sim.run_raters(server.url, specs, items, SECONDS, during=kill_and_restart)
    at_kill = checks["verification"]
    result = sim.verify(database_url, raters)
    print(f"\nat the kill: {at_kill.summary()}; afterwards: " + sim.describe(stats, result))
    assert checks["acknowledged before the kill"] > 0
    assert checks["consistency"] == []
    assert at_kill.ok, (at_kill.lost[:5], at_kill.duplicated[:5], at_kill.wrong[:5])
    assert [p for r in raters for p in r.problems] == []
    assert result.ok, (result.lost[:5], result.duplicated[:5], result.wrong[:5])
    assert sim.consistency_problems(database_url) == []
    assert stats.retried > 0  # the raters did meet the dead server and retried
