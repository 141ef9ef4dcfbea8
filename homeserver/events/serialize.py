"""Events as clients see them (the spec's ClientEvent format).

`EventSerializer.serialize_many` batch-loads what the client format needs
(prev_content of replaced state, redaction events, relation summaries) in
a few queries for a whole page or sync response, never one per event.
"""

from __future__ import annotations

from typing import Any, Sequence

from homeserver.protocol.events import Event
from homeserver.storage.stores.events import EventStore
from homeserver.util.caches import LruCache
from homeserver.util.clock import Clock

_EMPTY: dict[str, Any] = {}


class EventSerializer:
    def __init__(self, events: EventStore, clock: Clock) -> None:
        self._events = events
        self._clock = clock
        # event_id → relation summary ({} when the event has none)
        self._relations: LruCache[str, dict[str, Any]] = LruCache("relation_summaries", 50_000)

    # --- relation summary cache, kept fresh by persist listeners -----------
    def on_events_persisted(self, events: Sequence[Event]) -> None:
        for ev in events:
            self._relations.set(ev.event_id, _EMPTY)
            rel = ev.content.get("m.relates_to")
            if isinstance(rel, dict) and isinstance(rel.get("event_id"), str):
                self._relations.pop(rel["event_id"])
            if ev.type == "m.room.redaction" and isinstance(ev.redacts, str):
                # The redacted event may have been a relation: drop every summary it fed.
                self._relations.clear()

    async def _relation_summaries(self, event_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        missing = []
        for eid in event_ids:
            s = self._relations.get(eid)
            if s is None:
                missing.append(eid)
            elif s:
                out[eid] = s
        if missing:
            loaded = await self._events.get_relation_summaries(missing)
            for eid in missing:
                s = loaded.get(eid, _EMPTY)
                self._relations.set(eid, s)
                if s:
                    out[eid] = s
        return out

    async def serialize_many(self, events: Sequence[Event], *, user_id: str | None = None,
                             device_id: str | None = None, bundle_aggregations: bool = True,
                             event_format: str = "client", only_fields: list[str] | None = None,
                             include_room_id: bool = True) -> list[dict[str, Any]]:
        if not events:
            return []
        now = self._clock.time_msec()
        # Batch: replaced state and redaction events.
        need = set()
        for ev in events:
            rs = ev.internal.get("replaces_state")
            if rs:
                need.add(rs)
            rb = ev.internal.get("redacted_by")
            if rb:
                need.add(rb)
        extra = await self._events.get_events(need, allow_rejected=True) if need else {}
        summaries: dict[str, dict[str, Any]] = {}
        if bundle_aggregations:
            summaries = await self._relation_summaries([e.event_id for e in events])
            # Latest edits and thread heads referenced by the summaries.
            ref_ids = set()
            for s in summaries.values():
                if "m.replace" in s:
                    ref_ids.add(s["m.replace"][-1][0])
                if "m.thread" in s and s["m.thread"]["latest"]:
                    ref_ids.add(s["m.thread"]["latest"])
            ref_ids -= set(extra)
            if ref_ids:
                extra.update(await self._events.get_events(ref_ids))
        txn_device = f"{user_id}|{device_id}" if user_id else None
        out = []
        for ev in events:
            d = self._one(ev, now, txn_device, extra, event_format)
            if not include_room_id and event_format != "federation":
                # /sync's ClientEventWithoutRoomID: the room is the key above it.
                d.pop("room_id", None)
            s = summaries.get(ev.event_id)
            if s:
                rel = _bundle(ev, s, extra, now, txn_device, self)
                if rel:
                    d.setdefault("unsigned", {})["m.relations"] = rel
            if only_fields:
                d = _only_fields(d, only_fields)
            out.append(d)
        return out

    def _one(self, ev: Event, now: int, txn_device: str | None, extra: dict[str, Event],
             event_format: str = "client") -> dict[str, Any]:
        pdu = ev.pdu
        if event_format == "federation":
            d = dict(pdu)
            d.pop("unsigned", None)
            unsigned: dict[str, Any] = {}
        else:
            d = {
                "content": pdu.get("content", {}),
                "event_id": ev.event_id,
                "origin_server_ts": pdu.get("origin_server_ts", 0),
                "room_id": ev.room_id,
                "sender": pdu.get("sender"),
                "type": pdu.get("type"),
            }
            if "state_key" in pdu:
                d["state_key"] = pdu["state_key"]
            if "redacts" in pdu and ev.type == "m.room.redaction":
                d["redacts"] = pdu["redacts"]
            unsigned = {}
        unsigned["age"] = max(0, now - pdu.get("origin_server_ts", now))
        internal = ev.internal
        if txn_device is not None and internal.get("txn_device") == txn_device:
            unsigned["transaction_id"] = internal["txn_id"]
        rs = internal.get("replaces_state")
        if rs:
            unsigned["replaces_state"] = rs
            prev = extra.get(rs)
            if prev is not None:
                unsigned["prev_content"] = prev.content
                unsigned["prev_sender"] = prev.sender
        rb = internal.get("redacted_by")
        if rb:
            red = extra.get(rb)
            if red is not None:
                unsigned["redacted_because"] = self._one(red, now, None, {}, event_format)
        membership = ev.unsigned.get("membership")
        if membership:
            unsigned["membership"] = membership
        d["unsigned"] = unsigned
        return d

    async def serialize(self, ev: Event, **kw: Any) -> dict[str, Any]:
        return (await self.serialize_many([ev], **kw))[0]


def _bundle(ev: Event, s: dict[str, Any], extra: dict[str, Event], now: int, txn_device: str | None,
            ser: EventSerializer) -> dict[str, Any]:
    rel: dict[str, Any] = {}
    edits = s.get("m.replace")
    if edits:
        # Only edits by the original sender count.
        valid = [e for e in edits if e[1] == ev.sender]
        if valid:
            latest = extra.get(valid[-1][0])
            if latest is not None:
                rel["m.replace"] = ser._one(latest, now, txn_device, {})
    thread = s.get("m.thread")
    if thread:
        latest = extra.get(thread["latest"]) if thread["latest"] else None
        t: dict[str, Any] = {"count": thread["count"], "current_user_participated": False}
        if latest is not None:
            t["latest_event"] = ser._one(latest, now, txn_device, {})
        if txn_device is not None:
            user_id = txn_device.split("|", 1)[0]
            t["current_user_participated"] = user_id in thread["senders"] or ev.sender == user_id
        rel["m.thread"] = t
    refs = s.get("m.reference")
    if refs:
        rel["m.reference"] = {"chunk": [{"event_id": r} for r in refs]}
    return rel


def _only_fields(d: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields:
        parts = f.split(".")
        src: Any = d
        for p in parts:
            if not isinstance(src, dict) or p not in src:
                src = None
                break
            src = src[p]
        if src is None:
            continue
        dst = out
        for p in parts[:-1]:
            dst = dst.setdefault(p, {})
        dst[parts[-1]] = src
    return out
