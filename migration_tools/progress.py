"""Progress in documents and bytes, on a terminal only: quiet in logs and in CI."""

from __future__ import annotations

import time


def human_bytes(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


class Progress:
    """Rewrites one status line at most 5 times a second; does nothing when disabled."""

    def __init__(self, stream=None, *, enabled: bool = False) -> None:
        self.stream = stream
        self.enabled = bool(enabled and stream is not None)
        self._last = 0.0
        self._shown = False

    @classmethod
    def for_command(cls, stream, verbosity: int) -> Progress:
        isatty = getattr(getattr(stream, "_out", stream), "isatty", lambda: False)
        return cls(stream, enabled=verbosity >= 1 and isatty())

    def update(self, label: str, documents: int, size: int, total_documents: int | None = None) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.2:
            return
        self._last = now
        total = f"/{total_documents}" if total_documents is not None else ""
        self.stream.write(f"\r  {label}: {documents}{total} documents, {human_bytes(size)}\033[K", ending="")
        self.stream.flush()
        self._shown = True

    def done(self) -> None:
        if self.enabled and self._shown:
            self.stream.write("\r\033[K", ending="")
            self.stream.flush()
            self._shown = False
