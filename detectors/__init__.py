"""Background baselines and the streaming radiological, rain-aware and technical detectors.

:class:`Engine` judges readings as they are stored; :func:`detect_frame` runs the same engine
over a table (``radmon detect``). The names are imported on first use, so that the engine's
own process (detectors/engine_process.py) does not load pandas, which only tables need.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from detectors.engine import Engine
    from detectors.frames import ALARM_COLUMNS, detect_frame, episodes_frame, run_frame

_HOMES = {
    "Engine": "detectors.engine",
    "ALARM_COLUMNS": "detectors.frames",
    "detect_frame": "detectors.frames",
    "episodes_frame": "detectors.frames",
    "run_frame": "detectors.frames",
}
__all__ = ["ALARM_COLUMNS", "Engine", "detect_frame", "episodes_frame", "run_frame"]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'detectors' has no attribute {name!r}")
    return getattr(import_module(home), name)
