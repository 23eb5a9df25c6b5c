"""`twostep sync --watch`: run a pass, sleep until the next expiry (at most --max-sleep), repeat.

A bypass ends within about a second of its time: the record's `until` has whole seconds, and the
loop wakes just after it. Losing Keycloak is logged and retried; SIGTERM ends the loop cleanly.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime
from types import FrameType

from twostep.clock import Clock
from twostep.errors import KeycloakUnavailable, TwostepError

from .apply import Summary
from .plan import State, next_expiry

WAKE_AFTER_S = 0.05


def sleep_seconds(state: State | None, now: datetime, max_sleep: float) -> float:
    """Pure: how long to sleep after a pass."""
    if state is None:
        return max_sleep
    nxt = next_expiry(state, now)
    if nxt is None:
        return max_sleep
    return max(0.0, min(max_sleep, (nxt - now).total_seconds() + WAKE_AFTER_S))


def watch(run: Callable[[bool], tuple[Summary, State | None]], clock: Clock, max_sleep: float,
          full_every: float, report: Callable[[Summary | None, str | None], None],
          stop: threading.Event | None = None) -> None:
    """run(full) does one pass; full passes (definitions, groups, enforcement) every `full_every` s."""
    stop = stop or threading.Event()

    def on_term(_sig: int, _frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_term)
    last_full = float("-inf")
    while not stop.is_set():
        full = time.monotonic() - last_full >= full_every
        state: State | None = None
        try:
            summary, state = run(full)
            if full:
                last_full = time.monotonic()
            report(summary, None)
            delay = sleep_seconds(state, clock(), max_sleep)
        except KeycloakUnavailable as exc:
            report(None, str(exc))
            delay = min(max_sleep, 5.0)
        except TwostepError as exc:
            report(None, str(exc))
            delay = max_sleep
        stop.wait(delay)
