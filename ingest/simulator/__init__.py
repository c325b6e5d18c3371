"""The province network simulator: synthetic gamma dose-rate data with ground truth.

One stepper (:class:`ProvinceSimulator`) serves both files (:func:`simulate`, :func:`write_csvs`)
and live streaming (:func:`stream`).
"""

from ingest.simulator.config import SimulationConfig, floor_time
from ingest.simulator.engine import ProvinceSimulator, StepResult
from ingest.simulator.events import EventKind, InjectedEvent
from ingest.simulator.live import stream
from ingest.simulator.network import PROBE_GM, PROBE_SCINTILLATOR
from ingest.simulator.output import SimulationResult, simulate, write_csvs
from ingest.simulator.province import Province, Town, known_provinces, load_province
from ingest.simulator.weather import RainCell

__all__ = [
    "PROBE_GM",
    "PROBE_SCINTILLATOR",
    "EventKind",
    "InjectedEvent",
    "Province",
    "ProvinceSimulator",
    "RainCell",
    "SimulationConfig",
    "SimulationResult",
    "StepResult",
    "Town",
    "floor_time",
    "known_provinces",
    "load_province",
    "simulate",
    "stream",
    "write_csvs",
]
