"""A poll's sample becomes the CONTRACTS payload, in nSv/h, validated once here at the edge.

Converting at the edge means the central ingest never needs a probe's calibration; validating
with radmon's own ``Reading`` means the edge never spools what the centre would refuse.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from ingest.edge.base import Sample
from radmon import units
from radmon.errors import InputError, first_problem
from radmon.models import INT32_MAX, Reading


def iso_z(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` and milliseconds: fixed width, so text order is time order."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def to_payload(
    station_id: str, moment: datetime, sample: Sample, sensitivity: float | None
) -> dict[str, Any]:
    """The payload object for one reading; InputError if the value is impossible."""
    dose = units.to_nsv_h(sample.dose_rate, sample.unit, sensitivity)
    extra = dict(sample.extra)
    fields: dict[str, Any] = {}
    if "uncertainty" in extra:
        fields["uncertainty_nsv_h"] = units.to_nsv_h(
            extra.pop("uncertainty"), sample.unit, sensitivity
        )
    if "counts" in extra:
        counts = extra.pop("counts")
        if not math.isfinite(counts):
            raise InputError(f"counts {counts!r} is not a finite number")
        if round(counts) <= INT32_MAX:  # a counter past what a reading carries: the dose stays
            fields["counts"] = round(counts)
    fields.update(extra)
    if sample.status is not None:
        # a uint32 status word as the store's signed 32-bit column holds it: the same bits
        status = sample.status
        fields["status"] = status - 2**32 if status > INT32_MAX else status
    try:
        reading = Reading(station_id=station_id, time=moment, dose_rate_nsv_h=dose, **fields)
    except ValidationError as exc:
        where, message, got = first_problem(exc)
        raise InputError(f"{where}={got!r}: {message}") from exc
    payload: dict[str, Any] = {
        "time": iso_z(reading.time),
        "dose_rate": reading.dose_rate_nsv_h,
        "unit": units.CANONICAL_UNIT,
    }
    if reading.uncertainty_nsv_h is not None:
        payload["uncertainty"] = reading.uncertainty_nsv_h
    # every other field of a reading has the same name on the wire
    payload.update(reading.model_dump(exclude_none=True, exclude=_NAMED_OTHERWISE))
    return payload


_NAMED_OTHERWISE = {"station_id", "time", "dose_rate_nsv_h", "uncertainty_nsv_h"}
