"""A sorted multiset of tuples with cheap insert and remove at 100,000 entries.

Chunked lists (the idea behind `sortedcontainers.SortedList`, without the dependency): a
list of sorted chunks of at most 2 x LOAD entries and the last entry of each chunk, so an
insert or a removal moves at most a chunk (a memmove of a few kB), never the whole queue.
Iteration goes in order without popping, which a heap cannot do.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator
from typing import Any

LOAD = 256

#: Entries are tuples compared element by element; the engine makes every entry unique before
#: its last element (a sequence number), so the payload at the end is never compared.
Entry = tuple[Any, ...]


class SortedEntries:
    __slots__ = ("_len", "_lists", "_maxes")

    def __init__(self) -> None:
        self._lists: list[list[Entry]] = []
        self._maxes: list[Entry] = []
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def __bool__(self) -> bool:
        return self._len > 0

    def __iter__(self) -> Iterator[Entry]:
        for chunk in self._lists:
            yield from chunk

    def first(self) -> Entry:
        return self._lists[0][0]

    def add(self, entry: Entry) -> None:
        maxes = self._maxes
        self._len += 1
        if not maxes:
            self._lists.append([entry])
            maxes.append(entry)
            return
        i = bisect_left(maxes, entry)
        if i == len(maxes):
            # Past every entry: append to the last chunk (the usual case for a FIFO queue).
            i -= 1
            chunk = self._lists[i]
            chunk.append(entry)
            maxes[i] = entry
        else:
            chunk = self._lists[i]
            insort(chunk, entry)
        if len(chunk) > 2 * LOAD:
            tail = chunk[LOAD:]
            del chunk[LOAD:]
            maxes[i] = chunk[-1]
            self._lists.insert(i + 1, tail)
            maxes.insert(i + 1, tail[-1])

    def remove(self, entry: Entry) -> None:
        """Remove `entry` (which must be present)."""
        maxes = self._maxes
        i = bisect_left(maxes, entry)
        chunk = self._lists[i]
        j = bisect_left(chunk, entry)
        if j >= len(chunk) or chunk[j] != entry:
            raise KeyError(entry)
        del chunk[j]
        self._len -= 1
        if not chunk:
            del self._lists[i]
            del maxes[i]
        elif j == len(chunk):
            maxes[i] = chunk[-1]
