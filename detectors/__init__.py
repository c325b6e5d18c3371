"""Background baselines and the streaming radiological, rain-aware and technical detectors.

:class:`Engine` judges readings as they are stored; :func:`detect_frame` runs the same engine
over a table (``radmon detect``).
"""

from detectors.engine import Engine
from detectors.frames import ALARM_COLUMNS, detect_frame, episodes_frame, run_frame

__all__ = ["ALARM_COLUMNS", "Engine", "detect_frame", "episodes_frame", "run_frame"]
