"""Dose-rate colour bands and alarm rings of the map: one definition for markers and legend.

The bands are fixed (not relative to each station's background) so that a colour means the
same dose rate on every station and every day; detectors judge anomalies, the map shows levels.
An open alarm is a ring around the marker in its severity's colour, heavier as it gets worse,
so a level and an alarm read apart: the fill is what the probe measures, the ring what the
detectors made of it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

NO_DATA_COLOUR = "#9e9e9e"


@dataclass(frozen=True)
class Band:
    """Readings of at least ``lower_nsv_h`` (up to the next band) are drawn in ``colour``."""

    lower_nsv_h: float
    colour: str
    label: str


BANDS: tuple[Band, ...] = (
    Band(0.0, "#2e7d32", "< 100 nSv/h"),
    Band(100.0, "#9ccc65", "100–200 nSv/h"),
    Band(200.0, "#fdd835", "200–300 nSv/h"),
    Band(300.0, "#fb8c00", "300–1000 nSv/h"),
    Band(1_000.0, "#e53935", "≥ 1 µSv/h"),
    Band(100_000.0, "#6a1b9a", "≥ 100 µSv/h"),
)


@dataclass(frozen=True)
class Ring:
    """The ring drawn around a station whose most severe open alarm is ``severity``."""

    severity: str
    colour: str
    weight: int


RINGS: tuple[Ring, ...] = (
    Ring("info", "#1e88e5", 3),
    Ring("warning", "#ff8f00", 3),
    Ring("alert", "#d50000", 4),
    Ring("emergency", "#212121", 5),
)
# The thin dark edge of a marker without an open alarm.
PLAIN_EDGE = "#263238"


def colour_for(dose_rate_nsv_h: float | None, online: bool = True) -> str:
    """The fill colour of a marker; grey when the station is offline or has no reading."""
    if dose_rate_nsv_h is None or not online:
        return NO_DATA_COLOUR
    chosen = BANDS[0]
    for band in BANDS:
        if dose_rate_nsv_h >= band.lower_nsv_h:
            chosen = band
    return chosen.colour


def bands_for_page() -> list[dict[str, Any]]:
    """The bands as plain data for the page's JavaScript (lowest first)."""
    return [asdict(band) for band in BANDS]


def rings_for_page(strings: dict[str, str]) -> list[dict[str, Any]]:
    """The rings as plain data for the page (least severe first), with their words."""
    return [
        {**asdict(ring), "label": strings.get(f"severity_{ring.severity}", ring.severity)}
        for ring in RINGS
    ]
