"""Rate limiting and a progress bar for long operator work."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from typing import TextIO

BAR_WIDTH = 30
REDRAW_SECONDS = 0.1
TOLERANCE = 1e-9


class RateLimiter:
    """A token bucket: on average ``rate`` permits a second, bursts of a tenth.

    Args:
        rate: permits per second; None or 0 means no limit.
        clock: monotonic seconds (injected by tests).

    Note:
        The burst is capped at a tenth of a second's worth (at least one
        permit), so ``--rate`` holds over any window longer than that.
    """

    def __init__(self, rate: float | None, clock: Callable[[], float] = time.monotonic):
        self._rate = rate or None
        self._clock = clock
        self._capacity = max(1.0, (rate or 0) / 10)
        self._tokens = self._capacity
        self._updated = clock()

    @property
    def limited(self) -> bool:
        return self._rate is not None

    def delay(self) -> float:
        """Seconds to wait before the next permit; takes it when that is 0."""
        if self._rate is None:
            return 0.0
        now = self._clock()
        self._tokens = min(
            self._capacity, self._tokens + (now - self._updated) * self._rate
        )
        self._updated = now
        # The tolerance absorbs float rounding: after waiting exactly the
        # time returned, the permit must be there.
        if self._tokens >= 1 - TOLERANCE:
            self._tokens = max(self._tokens - 1, 0.0)
            return 0.0
        return (1 - self._tokens) / self._rate

    async def acquire(self) -> None:
        wait = self.delay()
        while wait > 0:
            await asyncio.sleep(wait)
            wait = self.delay()


class Progress:
    """A one-line progress bar on stderr, drawn only when stderr is a terminal.

    Args:
        enabled: force the bar on or off; by default on for a terminal.
    """

    def __init__(
        self,
        label: str,
        total: int,
        *,
        enabled: bool | None = None,
        stream: TextIO | None = None,
    ):
        self._stream = stream or sys.stderr
        self._enabled = self._stream.isatty() if enabled is None else enabled
        self._label = label
        self._total = max(total, 0)
        self._done = 0
        self._started = time.monotonic()
        self._drawn_at = 0.0

    def advance(self, count: int = 1) -> None:
        self._done += count
        if time.monotonic() - self._drawn_at >= REDRAW_SECONDS:
            self._draw()

    def close(self) -> None:
        if self._enabled:
            self._draw()
            print(file=self._stream, flush=True)

    def _draw(self) -> None:
        if not self._enabled:
            return
        self._drawn_at = time.monotonic()
        elapsed = max(self._drawn_at - self._started, 1e-9)
        fraction = min(self._done / self._total, 1.0) if self._total else 1.0
        filled = int(fraction * BAR_WIDTH)
        speed = self._done / elapsed
        remaining = (self._total - self._done) / speed if speed > 0 else 0.0
        line = (
            f"\r{self._label} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] "
            f"{self._done}/{self._total} {speed:.1f}/s ETA {remaining:.0f}s "
        )
        self._stream.write(line)
        self._stream.flush()
