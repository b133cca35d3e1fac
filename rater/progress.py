"""A progress bar on standard error for long command-line work (quiet for small jobs)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

SHOW_FROM = 2000


@contextmanager
def progress_bar(total: int, label: str) -> Iterator[Callable[[int], None]]:
    """Yields ``step(done)``; shows a bar only for jobs of at least SHOW_FROM units."""
    if total < SHOW_FROM:
        yield lambda _done: None
        return
    with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
        last = 0

        def step(done: int) -> None:
            nonlocal last
            bar.update(done - last)
            last = done

        yield step
