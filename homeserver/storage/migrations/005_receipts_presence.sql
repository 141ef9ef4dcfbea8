-- Receipts, presence and unread notification counts.
-- Typing is in memory only (its stream position restarts from the clock).

-- The latest receipt of each (room, type, user, thread): one row, updated in
-- place when the receipt moves forward. A sync delivers the rows whose
-- stream_id is in (since, now], so a receipt that moved twice between two
-- syncs is sent once, with its latest value.
CREATE TABLE receipts (
    room_id TEXT NOT NULL,
    receipt_type TEXT NOT NULL,            -- m.read, m.read.private, io.myelin.delivered
    user_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,               -- '' unthreaded; 'main' or a thread root's event ID
    event_id TEXT NOT NULL,
    event_stream_ordering BIGINT NOT NULL, -- the event's position: receipts only move forward
    data TEXT NOT NULL,                    -- JSON shown to clients for this user (ts, thread_id)
    stream_id BIGINT NOT NULL,             -- receipts stream position of the last change
    PRIMARY KEY (room_id, receipt_type, user_id, thread_id)
);
CREATE INDEX receipts_room_stream ON receipts (room_id, stream_id);
CREATE INDEX receipts_user_stream ON receipts (user_id, stream_id);
CREATE INDEX receipts_stream ON receipts (stream_id);

-- Each user's presence as last announced on the presence stream.
CREATE TABLE presence (
    user_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,                   -- online, unavailable, offline
    status_msg TEXT,
    last_active_ts BIGINT NOT NULL,        -- last pro-active action (0: never)
    last_user_sync_ts BIGINT NOT NULL,     -- last /sync (or presence PUT) seen
    currently_active SMALLINT NOT NULL DEFAULT 0,
    stream_id BIGINT NOT NULL              -- presence stream position of the last change
);
CREATE INDEX presence_stream ON presence (stream_id);

-- Unread notification counts per (user, room, thread), kept up to date by the
-- persist listener (one statement per thread per event batch for all local
-- members) and recomputed when the user's read receipt moves.
CREATE TABLE event_push_summary (
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,               -- 'main' or a thread root's event ID
    notif_count BIGINT NOT NULL,
    highlight_count BIGINT NOT NULL,
    stream_ordering BIGINT NOT NULL,       -- events position these counts include (an
                                           -- increment for an event at or below it is a repeat)
    PRIMARY KEY (user_id, room_id, thread_id)
);
CREATE INDEX event_push_summary_user_stream ON event_push_summary (user_id, stream_ordering);
