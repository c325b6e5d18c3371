"""Dose-rate units, converted once at the edge to the canonical nSv/h.

Counting units (cps, cpm) need the probe's sensitivity, so they are converted only where the
station's calibration is known; anything else is rejected with the offending unit named.
"""

from __future__ import annotations

import math

from radmon.errors import InputError

CANONICAL_UNIT = "nSv/h"

# Factors to nSv/h. Both the micro sign (U+00B5) and the Greek mu (U+03BC) occur in the wild.
_DOSE_RATE_FACTORS: dict[str, float] = {
    "nsv/h": 1.0,
    "usv/h": 1e3,
    "\u00b5sv/h": 1e3,
    "\u03bcsv/h": 1e3,
    "msv/h": 1e6,
    "sv/h": 1e9,
}
_COUNT_RATE_PER_SECOND: dict[str, float] = {"cps": 1.0, "cpm": 1.0 / 60.0}

# Above 10 Sv/h no environmental probe reports a meaningful value; it is a fault or garbage.
MAX_PLAUSIBLE_NSV_H = 1e10


def is_supported(unit: str) -> bool:
    """Whether *unit* is one radmon can convert (counting units need a calibration)."""
    key = unit.strip().lower()
    return key in _DOSE_RATE_FACTORS or key in _COUNT_RATE_PER_SECOND


def is_count_rate(unit: str) -> bool:
    """Whether *unit* counts pulses (cps, cpm): it converts only with a probe's sensitivity."""
    return unit.strip().lower() in _COUNT_RATE_PER_SECOND


def factor_to_nsv_h(unit: str, sensitivity_cps_per_usv_h: float | None = None) -> float:
    """What a value in *unit* is multiplied by to give nSv/h (every unit here is linear).

    ``sensitivity_cps_per_usv_h`` is the probe's response (counts per second per µSv/h) and is
    required for ``cps`` and ``cpm``.
    """
    key = unit.strip().lower()
    if key in _DOSE_RATE_FACTORS:
        return _DOSE_RATE_FACTORS[key]
    if key in _COUNT_RATE_PER_SECOND:
        if not sensitivity_cps_per_usv_h or sensitivity_cps_per_usv_h <= 0:
            raise InputError(
                f"unit {unit!r} needs the station's sensitivity_cps_per_usv_h, which is not set"
            )
        return _COUNT_RATE_PER_SECOND[key] / sensitivity_cps_per_usv_h * 1e3
    raise InputError(
        f"unit {unit!r} is not supported (use nSv/h, uSv/h, µSv/h, mSv/h, Sv/h, or cps/cpm "
        "with a calibrated station)"
    )


def to_nsv_h(value: float, unit: str, sensitivity_cps_per_usv_h: float | None = None) -> float:
    """Convert *value* in *unit* to nSv/h."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"dose rate {value!r} is not a number")
    if not math.isfinite(value):
        raise InputError(f"dose rate {value!r} is not a finite number")
    return float(value) * factor_to_nsv_h(unit, sensitivity_cps_per_usv_h)
