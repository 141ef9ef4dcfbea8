"""The in-memory window of recent receipt changes answers what the receipts table would, or declines."""

from __future__ import annotations

import random

from homeserver.storage.recent_receipts import RecentReceipts
from homeserver.storage.stores.receipts import Receipt


class _Table:
    """The receipts table (one row per room, type, user, thread, holding the newest write)
    and `ReceiptStore.get_receipts_for_rooms`'s query over it, in Python."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str, str, str], Receipt] = {}

    def write(self, r: Receipt) -> None:
        self.rows[(r.room_id, r.receipt_type, r.user_id, r.thread_id)] = r

    def query(self, rooms, since, upto):
        return sorted((r for r in self.rows.values() if r.room_id in rooms and since < r.stream_id <= upto),
                      key=_order)


def _order(r: Receipt):
    return (r.room_id, r.receipt_type, r.user_id, r.thread_id)


def _receipt(room, rtype, user, pos, thread=""):
    return Receipt(room, rtype, user, thread, f"$e{pos}", pos, {"ts": pos}, pos)


def test_answers_match_the_table_and_decline_outside_the_window():
    rng = random.Random(3)
    table = _Table()
    window = RecentReceipts(floor=10, per_room=40, max_changes=10**6)
    rooms = ["!a:hs", "!b:hs", "!c:hs"]
    users = [f"@u{i}:hs" for i in range(6)]
    types = ["m.read", "io.myelin.delivered", "m.read.private"]
    pos = 10
    answered = 0
    for _ in range(150):
        pos += 1
        written = {}
        for _ in range(rng.randrange(1, 5)):  # one write: several receipts at one position, one row per key
            r = _receipt(rng.choice(rooms), rng.choice(types), rng.choice(users), pos, rng.choice(["", "", "$t"]))
            table.write(r)
            written[_order(r)] = r
        window.add(list(written.values()))
        for _ in range(20):
            since = rng.randrange(5, pos + 1)
            upto = rng.randrange(since, pos + 1)
            wanted = rng.sample(rooms, rng.randrange(1, 4))
            got = window.get(wanted, since, upto)
            if got is None:
                assert since < 10 or any(since < window._rooms[r].complete_after  # noqa: SLF001
                                         for r in wanted if r in window._rooms)  # noqa: SLF001
                continue
            answered += 1
            assert sorted(got, key=_order) == table.query(wanted, since, upto), (since, upto, wanted)
    assert answered > 1000


def test_a_key_rewritten_after_a_newer_change_drops_the_room():
    """Writes at positions 6 and 5 commit in that order: the table holds 5's row; the window lets go."""
    window = RecentReceipts(floor=0)
    window.add([_receipt("!r:hs", "m.read", "@a:hs", 6)])
    assert [r.stream_id for r in window.get(["!r:hs"], 0, 6)] == [6]
    late = Receipt("!r:hs", "m.read", "@a:hs", "", "$later", 9, {}, 5)
    window.add([late])
    assert window.get(["!r:hs"], 5, 6) is None  # the database answers
    assert window.floor == 6  # other rooms absent from the window had nothing after it either


def test_a_late_change_of_another_key_takes_its_place():
    window = RecentReceipts(floor=3)
    window.add([_receipt("!r:hs", "m.read", "@a:hs", 6)])  # complete after the floor
    window.add([_receipt("!r:hs", "m.read", "@b:hs", 5)])  # committed late
    assert [r.user_id for r in window.get(["!r:hs"], 3, 6)] == ["@b:hs", "@a:hs"]
    assert [r.user_id for r in window.get(["!r:hs"], 5, 6)] == ["@a:hs"]
    assert window.get(["!r:hs"], 2, 6) is None  # below the floor


def test_trimming_and_eviction_raise_what_it_answers_for():
    window = RecentReceipts(floor=0, per_room=3, max_changes=5)
    for pos in range(1, 6):
        window.add([_receipt("!r:hs", "m.read", f"@u{pos}:hs", pos)])
    assert window.get(["!r:hs"], 1, 5) is None  # trimmed: complete after 2
    assert [r.stream_id for r in window.get(["!r:hs"], 2, 5)] == [3, 4, 5]
    for pos in range(6, 9):
        window.add([_receipt("!s:hs", "m.read", "@x:hs", pos)])
    # 3 + 3 > 5: the least recently written room (!r) goes, and the floor with it.
    assert window.get(["!r:hs"], 5, 8) == []
    assert window.get(["!r:hs"], 4, 8) is None
    assert [r.stream_id for r in window.get(["!s:hs"], 5, 8)] == [8]  # @x's newest only
    assert window.get(["!unknown:hs"], 0, 8) is None
    assert window.get(["!unknown:hs"], 5, 8) == []
