"""A progress line on stderr: redrawn in place on a terminal, periodic lines otherwise."""

import sys
import time
from typing import TextIO


class Progress:
    """Shows sent/total, in flight, answered, errors and drops."""

    def __init__(self, total: int, duration_s: float, stream: TextIO | None = None,
                 every_s: float | None = None):
        self.total = max(total, 1)
        self.duration_s = duration_s
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.every_s = every_s if every_s is not None else (0.2 if self.tty else 5.0)
        self._last = 0.0

    def line(self, elapsed: float, records, outstanding: int, note: str = "") -> str:
        sent = sum(1 for r in records if not r.dropped)
        answered = sum(1 for r in records if r.status)
        errors = sum(1 for r in records if r.status >= 400 or (r.error and not r.dropped))
        dropped = len(records) - sent
        width = 24
        filled = int(width * len(records) / self.total)
        bar = "#" * filled + "." * (width - filled)
        return (f"[{bar}] {len(records)}/{self.total} t={elapsed:5.1f}/{self.duration_s:.0f}s "
                f"in flight {outstanding}, answered {answered}, errors {errors}, "
                f"dropped {dropped}{'  ' + note if note else ''}")

    def show(self, elapsed: float, records, outstanding: int, note: str = "",
             force: bool = False) -> None:
        """Draw the line if ``every_s`` passed since the last one (or ``force``)."""
        now = time.monotonic()
        if not force and now - self._last < self.every_s:
            return
        self._last = now
        text = self.line(elapsed, records, outstanding, note)
        self.stream.write(f"\r{text}\x1b[K" if self.tty else text + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
