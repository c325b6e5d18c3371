"""Exponential backoff with jitter: a dead probe is not hammered, edges do not retry in step."""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """Delays that double from *initial* up to *cap*; each is drawn from [d/2, d] (equal jitter)."""

    def __init__(
        self, initial: float, cap: float, rand: Callable[[], float] = random.random
    ) -> None:
        self.initial = initial
        self.cap = max(cap, initial)
        self._rand = rand
        self._attempt = 0

    def next(self) -> float:
        """The delay before the next attempt."""
        ceiling = min(self.cap, self.initial * 2 ** min(self._attempt, 60))
        self._attempt += 1
        return ceiling / 2 + self._rand() * ceiling / 2

    def reset(self) -> None:
        """After a success the next failure starts from *initial* again."""
        self._attempt = 0
