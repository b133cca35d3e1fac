"""50 raters autosave concurrently against ``rater serve``: nothing lost, nothing doubled."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.load]

SECONDS = 10


def test_fifty_raters_autosave_without_loss_or_duplicates(database_url, study, sim):
    specs, items = study
    with sim.Server(database_url, workers=2, threads=4) as server:
        raters, stats = sim.run_raters(server.url, specs, items, SECONDS)
    problems = [p for r in raters for p in r.problems]
    result = sim.verify(database_url, raters)
    print("\n" + sim.describe(stats, result))
    assert problems == []
    assert result.ok, (result.lost[:5], result.duplicated[:5], result.wrong[:5])
    assert sim.consistency_problems(database_url) == []
    assert server.errors() == [], "".join(server.output[-120:])
    assert stats.acknowledged >= 3 * len(specs)  # the load was real (on a busy 2-core box)
    assert stats.resent > 0 and stats.abandoned > 0  # and retries were exercised
    assert stats.late > 0  # and late copies of old batches (answered as duplicates)
