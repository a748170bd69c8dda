"""read_lines: an instance's output, line by line, whatever the line length."""

import asyncio

from scalezero.backends.output import read_lines


def lines_of(data: bytes, max_bytes: int, feed: int = 7) -> list[bytes]:
    async def run():
        reader = asyncio.StreamReader(limit=16)  # readline() would raise past 16 bytes
        for i in range(0, len(data), feed):  # arrives in small pieces, as from a pipe
            reader.feed_data(data[i:i + feed])
        reader.feed_eof()
        return [line async for line in read_lines(reader, max_bytes)]
    return asyncio.run(run())


def test_short_lines_pass_unchanged_and_a_last_line_without_newline_is_kept():
    assert lines_of(b"a\nbb\n\nccc", 10) == [b"a", b"bb", b"", b"ccc"]


def test_a_long_line_is_cut_and_reading_goes_on():
    out = lines_of(b"x" * 1000 + b"\nafter\n", 10)
    assert out == [b"xxxxxxxxxx ... [line cut: 990 more bytes]", b"after"]


def test_a_long_last_line_is_cut_too():
    assert lines_of(b"y" * 25, 10) == [b"yyyyyyyyyy ... [line cut: 15 more bytes]"]
