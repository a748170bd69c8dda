"""Reading an instance's output pipe line by line, whatever the line length.

asyncio's ``StreamReader.readline`` raises ``ValueError`` on a line over its
64 KiB limit; a reader that dies there stops draining the pipe, the instance
blocks on its next write, and every later request to it hangs (a long URL in
an access-log line was enough). ``read_lines`` reads in chunks and never
stops before EOF: a line longer than ``max_bytes`` is cut there, the rest of
it is skipped, and the kept part says how much was dropped.
"""

from typing import AsyncIterator

LINE_MAX_BYTES = 16 * 1024  # longest log line kept; the rest of a longer one is dropped
_CHUNK = 64 * 1024


def _cut(line: bytes, dropped: int) -> bytes:
    return line + f" ... [line cut: {dropped} more bytes]".encode() if dropped else line


async def read_lines(stream, max_bytes: int = LINE_MAX_BYTES) -> AsyncIterator[bytes]:
    """Each line of ``stream`` without its newline (cut at ``max_bytes``), until EOF."""
    buf, dropped = bytearray(), 0
    while True:
        chunk = await stream.read(_CHUNK)
        if not chunk:
            if buf or dropped:
                yield _cut(bytes(buf), dropped)
            return
        parts = chunk.split(b"\n")
        for part in parts[:-1]:
            room = max_bytes - len(buf)
            buf += part[:max(room, 0)]
            yield _cut(bytes(buf), dropped + max(len(part) - room, 0))
            buf, dropped = bytearray(), 0
        tail = parts[-1]
        room = max_bytes - len(buf)
        buf += tail[:max(room, 0)]
        dropped += max(len(tail) - room, 0)
