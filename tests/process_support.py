"""Which processes a process started, read from /proc (Linux)."""

from contextlib import suppress
from pathlib import Path


def children(pid: int) -> list[int]:
    """The children of every thread of ``pid`` (a process started from a request thread of a
    gthread worker is listed under that thread, not under the main one)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with suppress(OSError):
            found += [int(part) for part in (task / "children").read_text().split()]
    return found


def descendants(pid: int) -> list[int]:
    found, queue = [], [pid]
    while queue:
        below = children(queue.pop())
        found += below
        queue += below
    return found
