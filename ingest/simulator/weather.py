"""Rain cells that move across the province, and the rain rate they give at each station.

Rain matters because washout of radon progeny is the largest natural disturbance a detector must
not mistake for a source; moving cells give neighbouring stations rain a little apart in time,
as on a real radar.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from ingest.simulator.province import Province
from radmon.times import zone

# Cell properties: assumptions for the two kinds of rain of a monsoon climate, not measured
# figures. Wide, long systems (fronts, monsoon troughs, typhoon bands, winter drizzle) bring most of
# the rain; small convective showers bring the short heavy bursts that give the sharpest washout.
CELL_SPEED_KMH = (15.0, 50.0)
STRATIFORM_RADIUS_KM = (20.0, 60.0)
STRATIFORM_LIFETIME_H = (3.0, 10.0)
CONVECTIVE_RADIUS_KM = (3.0, 12.0)
CONVECTIVE_LIFETIME_H = (0.5, 2.0)
CELL_PEAK_LOG_SPREAD = 0.6
CELL_PEAK_MAX_MM_H = 120.0
CELL_HEADING_SPREAD_DEG = 35.0
SPAWN_MARGIN_KM = 30.0
# Below this a gauge shows nothing and washout is negligible: "rain has stopped".
RAIN_THRESHOLD_MM_H = 0.1
_PLAN_BLOCK_S = 86_400
_TEN_PERCENT = math.sqrt(2.0 * math.log(10.0))  # radius / sigma where rain is 10 % of the peak


@dataclass(frozen=True)
class RainCell:
    """A rain cell: where it starts, how it moves, how wide and strong it is, how long it lives.

    The rate is ``peak_mm_h`` at the centre at mid-life, falls to 10 % at ``radius_km`` and rises
    and fades over ``lifetime_h`` as a half sine.
    """

    start: datetime
    lat: float
    lon: float
    speed_kmh: float
    heading_deg: float  # direction of motion, clockwise from north
    radius_km: float
    peak_mm_h: float
    lifetime_h: float
    kind: str = "convective"  # or "stratiform"; descriptive only


class Weather:
    """Plans rain cells one day at a time (from its own random stream) and gives rain rates."""

    def __init__(
        self,
        province: Province,
        x_km: np.ndarray,
        y_km: np.ndarray,
        rng: np.random.Generator,
        start: datetime,
        factor: float = 1.0,
        enabled: bool = True,
    ):
        self.province = province
        self._x, self._y = x_km, y_km
        self._rng = rng
        self._zone = zone(province.timezone)
        self._factor = factor
        self._enabled = enabled
        self._planned_until = start.timestamp()
        self.cells: list[RainCell] = []
        self._arrays = np.empty((8, 0))  # t0, t1, x0, y0, vx, vy, sigma, peak

    def add(self, cell: RainCell) -> None:
        """Add one cell (for a what-if or a test), on top of the planned weather."""
        self.cells.append(cell)
        x0, y0 = self.province.to_xy(cell.lat, cell.lon)
        heading = math.radians(cell.heading_deg)
        t0 = cell.start.timestamp()
        row = np.array(
            [
                t0,
                t0 + cell.lifetime_h * 3600.0,
                float(x0),
                float(y0),
                cell.speed_kmh * math.sin(heading) / 3600.0,
                cell.speed_kmh * math.cos(heading) / 3600.0,
                cell.radius_km / _TEN_PERCENT,
                cell.peak_mm_h,
            ]
        )
        self._arrays = np.concatenate([self._arrays, row[:, None]], axis=1)

    def _plan_block(self) -> None:
        block_start = self._planned_until
        self._planned_until += _PLAN_BLOCK_S
        # Forget cells that ended before this block: a long live run keeps constant memory.
        self._arrays = self._arrays[:, self._arrays[1] >= block_start]
        self.cells = [
            c for c in self.cells if c.start.timestamp() + c.lifetime_h * 3600.0 >= block_start
        ]
        if not self._enabled:
            return
        month = datetime.fromtimestamp(block_start, UTC).astimezone(self._zone).month - 1
        climate = self.province.climate
        for kind, per_day, peak, radius, lifetime in (
            (
                "stratiform",
                climate.stratiform_per_day[month],
                climate.stratiform_peak_mm_h[month],
                STRATIFORM_RADIUS_KM,
                STRATIFORM_LIFETIME_H,
            ),
            (
                "convective",
                climate.convective_per_day[month],
                climate.convective_peak_mm_h[month],
                CONVECTIVE_RADIUS_KM,
                CONVECTIVE_LIFETIME_H,
            ),
        ):
            n = int(self._rng.poisson(per_day * self._factor))
            self._plan_cells(kind, n, block_start, peak, radius, lifetime, month)

    def _plan_cells(
        self,
        kind: str,
        n: int,
        block_start: float,
        peak_median: float,
        radius_km: tuple[float, float],
        lifetime_h: tuple[float, float],
        month: int,
    ) -> None:
        rng, province = self._rng, self.province
        box = province.bbox
        x_low, y_low = province.to_xy(box.lat_min, box.lon_min)
        x_high, y_high = province.to_xy(box.lat_max, box.lon_max)
        m = SPAWN_MARGIN_KM
        starts = block_start + rng.uniform(0, _PLAN_BLOCK_S, n)
        x0 = rng.uniform(float(x_low) - m, float(x_high) + m, n)
        y0 = rng.uniform(float(y_low) - m, float(y_high) + m, n)
        steering = province.climate.steering_from_deg[month] + 180.0
        heading = (steering + rng.normal(0, CELL_HEADING_SPREAD_DEG, n)) % 360.0
        speed = rng.uniform(*CELL_SPEED_KMH, n)
        radius = rng.uniform(*radius_km, n)
        peak = np.minimum(
            peak_median * rng.lognormal(0.0, CELL_PEAK_LOG_SPREAD, n), CELL_PEAK_MAX_MM_H
        )
        life = rng.uniform(*lifetime_h, n)
        lat, lon = province.to_latlon(x0, y0)
        for i in np.argsort(starts, kind="stable"):
            self.add(
                RainCell(
                    start=datetime.fromtimestamp(round(float(starts[i])), UTC),
                    lat=round(float(lat[i]), 4),
                    lon=round(float(lon[i]), 4),
                    speed_kmh=round(float(speed[i]), 1),
                    heading_deg=round(float(heading[i]), 1),
                    radius_km=round(float(radius[i]), 2),
                    peak_mm_h=round(float(peak[i]), 2),
                    lifetime_h=round(float(life[i]), 3),
                    kind=kind,
                )
            )

    def rate_mm_h(self, t: float) -> np.ndarray:
        """Rain rate (mm/h) at every station at Unix time *t*."""
        while self._planned_until <= t:
            self._plan_block()
        a = self._arrays
        active = (a[0] <= t) & (t < a[1])
        rate = np.zeros(len(self._x))
        if not active.any():
            return rate
        t0, t1, x0, y0, vx, vy, sigma, peak = a[:, active]
        age = t - t0
        envelope = peak * np.sin(math.pi * age / (t1 - t0))
        cx, cy = x0 + vx * age, y0 + vy * age
        d2 = (self._x[:, None] - cx) ** 2 + (self._y[:, None] - cy) ** 2
        rate = (envelope * np.exp(-d2 / (2.0 * sigma**2))).sum(axis=1)
        rate[rate < RAIN_THRESHOLD_MM_H] = 0.0
        return rate
