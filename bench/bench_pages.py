"""First contentful paint of the rater's queue and rating page, in Chromium, with the demo study.

Run: ``python bench/bench_pages.py`` (``--runs 9``). It builds the demo study (``rater demo
--no-serve``: 197 sessions, 5 raters, simulated ratings) in a fresh SQLite file, starts ``rater
serve`` (gunicorn, as in production) on a free loopback port, logs in as ``rater1`` in headless
Debian Chromium (``/usr/bin/chromium``) at 1366×768 and loads each page ``--runs`` times:

* the queue (``/queue``);
* the rating page of the rater's next session (started through the queue's button first).

For each load the browser's own Paint Timing entry ``first-contentful-paint`` is read, with the
navigation's ``responseEnd`` (time to the last byte of the HTML) and ``domContentLoadedEventEnd``.
The first load of each page runs with an empty cache (cold); the rest are ordinary reloads of a
rater at work (warm: static files cached). Printed: cold, median and max of the warm loads, in
milliseconds, and whether the median FCP meets the goal (< 300 ms).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from tests.load import simulation as sim  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
GOAL_MS = 300.0
RATER = ("rater1", "demo-rater1")
TIMING_JS = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const fcp = performance.getEntriesByName('first-contentful-paint')[0];
  return {fcp: fcp ? fcp.startTime : null, response: nav.responseEnd,
          dcl: nav.domContentLoadedEventEnd};
}"""
FCP_READY_JS = "() => performance.getEntriesByName('first-contentful-paint').length > 0"


def build_demo(database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": sim.SECRET_KEY}
    subprocess.run(
        [sys.executable, "-c", "from rater.cli import main; main()", "demo", "--no-serve"],
        env=env, cwd=PROJECT_ROOT, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip


def timed_load(page, url: str) -> dict[str, float]:
    page.goto(url, wait_until="load")
    page.wait_for_function(FCP_READY_JS)
    return page.evaluate(TIMING_JS)


def measure(page, url: str, runs: int) -> list[dict[str, float]]:
    """One cold load (cache cleared through the DevTools protocol), then warm reloads.

    An untimed load first lets each server worker import and cache what it needs: a rater's
    first page of the day is not what this measures.
    """
    for _ in range(2):
        page.goto(url)
    session = page.context.new_cdp_session(page)
    session.send("Network.enable")
    session.send("Network.clearBrowserCache")
    return [timed_load(page, url) for _ in range(runs)]


def report(name: str, loads: list[dict[str, float]]) -> float:
    cold, warm = loads[0], loads[1:] or loads
    print(f"{name}  ({len(warm)} warm loads after 1 cold)")
    for key, label in (("fcp", "first contentful paint"), ("response", "HTML received"),
                       ("dcl", "DOMContentLoaded")):  # fmt: skip
        values = [load[key] for load in warm]
        print(
            f"  {label:24s} cold {cold[key]:7.1f} ms   median {statistics.median(values):7.1f} ms"
            f"   max {max(values):7.1f} ms"
        )
    return statistics.median(load["fcp"] for load in warm)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=9, help="loads per page (the first is cold)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="rater-bench-pages-") as tmp:
        database_url = f"sqlite:///{tmp}/bench.db"
        print("Building the demo study …", flush=True)
        build_demo(database_url)
        with sim.Server(database_url) as server, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            page.goto(f"{server.url}/login")
            page.fill("#username", RATER[0])
            page.fill("#password", RATER[1])
            page.click("button[type=submit]")
            page.wait_for_url("**/queue")
            queue = measure(page, f"{server.url}/queue", args.runs)
            page.click("#next-session")
            page.wait_for_url("**/rate")
            rate = measure(page, page.url, args.runs)
            browser.close()
            errors = server.errors()
    print(f"Chromium headless, 1366×768, demo study, {RATER[0]}; goal: FCP < {GOAL_MS:.0f} ms")
    medians = [report("queue", queue), report("rating page", rate)]
    ok = all(m < GOAL_MS for m in medians)
    print("goal met" if ok else "goal NOT met", "(median FCP of warm loads)")
    if errors:
        print("server errors:", *errors, sep="\n")
    return 0 if ok and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
