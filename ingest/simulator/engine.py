"""The stepper: advances the whole network one reporting interval at a time.

One code path serves files (:func:`~ingest.simulator.output.simulate`) and live streaming
(:func:`~ingest.simulator.live.stream`): both call :meth:`ProvinceSimulator.step`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from ingest.simulator.config import SimulationConfig
from ingest.simulator.events import EventKind, EventPlanner, InjectedEvent
from ingest.simulator.network import Network, build_network
from ingest.simulator.physics import Washout, baseline_nsv_h, count, counts_to_nsv_h
from ingest.simulator.province import Province, load_province
from ingest.simulator.weather import RainCell, Weather
from radmon.models import Reading, Station, trusted
from radmon.times import zone

# Independent random streams (numpy SeedSequence children), in a fixed order: switching events
# off, or adding a stream at the end, leaves the others (weather, noise, ...) unchanged.
_STREAMS = ("network", "weather", "noise", "events", "faults")


@dataclass(frozen=True)
class StepResult:
    """One reporting interval.

    ``station_index``, ``dose_rate_nsv_h``, ``precip_mm_h`` (NaN where the station has no gauge)
    and ``counts`` cover the stations that reported (dropouts are left out). ``mean_nsv_h`` and
    ``rain_mm_h`` are ground truth for every station (index = station index): the noise-free
    dose rate and the rain that fell, whether or not a gauge or a reading saw it.
    """

    time: datetime
    station_index: np.ndarray
    dose_rate_nsv_h: np.ndarray
    precip_mm_h: np.ndarray
    counts: np.ndarray
    mean_nsv_h: np.ndarray
    rain_mm_h: np.ndarray


class ProvinceSimulator:
    """A province's dose-rate network, stepped one interval at a time, vectorised over stations.

    Readings are stamped at the end of the interval they cover: the first step's readings are at
    ``config.start + interval_s``. *horizon_days* makes the event counts apply to that whole span
    (as for a file); without it they apply to every ``config.event_window_days``.
    """

    def __init__(self, config: SimulationConfig, horizon_days: float | None = None):
        self.config = config
        self.province: Province = load_province(config.province)
        seeds = np.random.SeedSequence(config.seed).spawn(len(_STREAMS))
        rngs = dict(zip(_STREAMS, (np.random.default_rng(s) for s in seeds), strict=True))
        self.network: Network = build_network(self.province, config, rngs["network"])
        net = self.network
        self._dt = config.interval_s
        self._start_ts = config.start.timestamp()
        self._zone = zone(self.province.timezone)
        self._noise = rngs["noise"]
        self._weather = Weather(
            self.province,
            net.x_km,
            net.y_km,
            rngs["weather"],
            config.start,
            config.rain_factor,
            enabled=config.rain,
        )
        self._washout = Washout(net.background_nsv_h, net.washout_gain, net.washout_half_life_min)
        if horizon_days is not None:
            window = max(1, round(horizon_days * 86400 / self._dt))
        else:
            window = max(1, round(config.event_window_days * 86400 / self._dt))
        self._planner = EventPlanner(
            net,
            self.province,
            config,
            rngs["events"],
            rngs["faults"],
            window,
            open_ended=horizon_days is not None,
        )
        self._k = 0
        self._frozen: dict[int, tuple[float, int]] = {}  # the reading a stuck probe repeats
        self._all = np.arange(len(net))

    @property
    def stations(self) -> list[Station]:
        return self.network.stations

    @property
    def time(self) -> datetime:
        """The current simulated time: the stamp of the last step (``config.start`` before any)."""
        return self.config.start + timedelta(seconds=self._k * self._dt)

    @property
    def next_time(self) -> datetime:
        """The stamp the next :meth:`step` will return."""
        return self.config.start + timedelta(seconds=(self._k + 1) * self._dt)

    @property
    def steps_done(self) -> int:
        return self._k

    @property
    def events(self) -> list[InjectedEvent]:
        """Ground truth of the events planned so far: the whole run, or up to the current window
        (so it may list events still to come)."""
        return list(self._planner.events)

    @property
    def rain_cells(self) -> list[RainCell]:
        """Rain cells of the current and next day (older ones are forgotten), e.g. for a map."""
        return list(self._weather.cells)

    def add_rain_cell(self, cell: RainCell) -> None:
        """Add a rain cell on top of the planned weather (for a what-if, a demo or a test)."""
        self._weather.add(cell)

    def step(self) -> StepResult:
        """Advance one interval and return the readings stamped at its end."""
        self._k += 1
        k, dt, net = self._k, self._dt, self.network
        moment = self.time
        self._planner.activate(k)
        rain = self._weather.rate_mm_h(self._start_ts + (k - 0.5) * dt)
        excess = self._washout.advance(rain, dt / 3600.0)
        local = moment.astimezone(self._zone)
        hour = local.hour + local.minute / 60.0 + local.second / 3600.0
        mean = baseline_nsv_h(net, k * dt / 86400.0, local.timetuple().tm_yday, hour) + excess
        self._planner.added_nsv_h(k, mean)
        counts = count(self._noise, mean, net.sensitivity_cps_per_usv_h, dt)
        dose = counts_to_nsv_h(counts, net.sensitivity_cps_per_usv_h, dt).round(2)
        self._apply_stuck(k, dose, counts)
        dropped = self._planner.faulty(k, EventKind.DROPOUT)
        index = np.delete(self._all, dropped) if dropped else self._all
        precip = np.where(net.has_gauge, rain.round(2), np.nan)
        return StepResult(
            time=moment,
            station_index=index,
            dose_rate_nsv_h=dose[index],
            precip_mm_h=precip[index],
            counts=counts[index],
            mean_nsv_h=mean,
            rain_mm_h=rain,
        )

    def _apply_stuck(self, k: int, dose: np.ndarray, counts: np.ndarray) -> None:
        """Replace the readings of stuck probes by the first reading of their episode."""
        stuck = self._planner.faulty(k, EventKind.STUCK)
        for i in stuck:
            if i not in self._frozen:
                self._frozen[i] = (dose[i], counts[i])
            dose[i], counts[i] = self._frozen[i]
        if len(self._frozen) > len(stuck):
            self._frozen = {i: self._frozen[i] for i in stuck}

    def to_readings(self, result: StepResult) -> list[Reading]:
        """The step's readings as radmon Readings (trusted data: built without validation)."""
        net, dt = self.network, float(self._dt)
        idx = result.station_index
        sensitivity = net.sensitivity_cps_per_usv_h[idx]
        uncertainty = (np.sqrt(np.maximum(result.counts, 1)) * 1e3 / (sensitivity * dt)).round(2)
        precip = [None if p != p else p for p in result.precip_mm_h.tolist()]
        return [
            trusted(
                Reading,
                station_id=sid,
                time=result.time,
                dose_rate_nsv_h=dose,
                uncertainty_nsv_h=unc,
                counts=c,
                interval_s=dt,
                precip_mm_h=p,
            )
            for sid, dose, unc, c, p in zip(
                net.ids[idx].tolist(),
                result.dose_rate_nsv_h.tolist(),
                uncertainty.tolist(),
                result.counts.tolist(),
                precip,
                strict=True,
            )
        ]
