"""Login rate limiting: failed sign-ins per client address and per user name, in a window.

A guesser gets ``login_failures_per_user`` tries at one name and
``login_failures_per_address`` tries from one address per window, then 429 with Retry-After
until the oldest failure leaves the window. A success clears the name's count (not the
address's). The counts live in this process: with several web nodes the limit is per node.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

# Most keys remembered: a flood from many addresses cannot take the server's memory; the
# oldest keys are forgotten first.
MAX_KEYS = 50_000


class LoginThrottle:
    def __init__(
        self,
        per_address: int,
        per_user: int,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits = {"address": per_address, "user": per_user}
        self._window = window_s
        self._clock = clock
        self._failures: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _keys(self, address: str, name: str) -> list[tuple[str, str]]:
        return [("address", address), ("user", name.lower())]

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self._window:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def retry_after(self, address: str, name: str) -> int:
        """Seconds until this address may try this name again; 0 when it may now."""
        now = self._clock()
        wait = 0.0
        with self._lock:
            for key in self._keys(address, name):
                times = self._recent(key, now)
                if len(times) >= self._limits[key[0]]:
                    wait = max(wait, times[0] + self._window - now)
        return math.ceil(wait)

    def failed(self, address: str, name: str) -> None:
        now = self._clock()
        with self._lock:
            for key in self._keys(address, name):
                times = self._failures.setdefault(key, deque())
                times.append(now)
                self._failures.move_to_end(key)
            while len(self._failures) > MAX_KEYS:
                self._failures.popitem(last=False)

    def succeeded(self, address: str, name: str) -> None:
        with self._lock:
            self._failures.pop(("user", name.lower()), None)
