"""Writing a row at a new position of a stream.

The position is allocated on the reactor thread before the transaction and
finished after it commits — or after it fails, however it fails (including
before it started) — so the stream's frontier never passes a row that is not
yet visible and never waits for one that will not come.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from homeserver.storage.database import Database, Txn
from homeserver.streams.ids import StreamIdGenerator

T = TypeVar("T")


async def write_at_new_position(db: Database, stream_ids: StreamIdGenerator, name: str,
                                write: Callable[[Txn, int], T],
                                committed: Callable[[T, int], Any] | None = None) -> tuple[int, T]:
    """Run ``write(txn, position)`` in transaction ``name`` at a new position.

    Args:
        committed: ``committed(result, position)`` after the commit, before the
            position is finished (e.g. to mark a change cache first).

    Returns:
        (position, what ``write`` returned).
    """
    stream_id = stream_ids.next_id()
    finished = False

    def _finish() -> None:
        nonlocal finished
        if not finished:
            finished = True
            stream_ids.finish(stream_id)

    def _after(result: T) -> None:
        if committed is not None:
            committed(result, stream_id)
        _finish()

    def _txn(txn: Txn) -> T:
        txn.call_on_exception(_finish)
        result = write(txn, stream_id)
        txn.call_after(_after, result)
        return result

    try:
        result = await db.run_txn(name, _txn)
    except BaseException:
        _finish()
        raise
    return stream_id, result
