"""What the allocation refuses, for the services, the pure design's calibration draw, the views
and the CLI alike (pure: no flask, no sqlalchemy)."""

from __future__ import annotations


class AllocationError(ValueError):
    """A change the allocation refuses (the message says why)."""


class CalibrationError(AllocationError):
    """A calibration change, draw or gate setting that is refused (the message says why)."""
