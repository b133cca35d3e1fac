"""BLAS single-threaded in the results tests, as the app runs them (``report.results``): the
matrices are tiny, and threads only contend on a shared machine."""

from __future__ import annotations

import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(limits=1):
        yield
