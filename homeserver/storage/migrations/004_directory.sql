-- Room directory, summaries and spaces: a per-room row of the facts that
-- /publicRooms, /room_summary and /hierarchy show, so none of them reads and
-- parses room state per room per request. Derived data: it is rebuilt from
-- current_state_events and room_memberships (see storage/stores/directory.py).

CREATE TABLE room_stats_current (
    room_id TEXT PRIMARY KEY,
    room_version TEXT,
    room_type TEXT,                   -- content.type of m.room.create (NULL: an ordinary room)
    name TEXT,
    topic TEXT,                       -- the plain-text topic
    avatar_url TEXT,
    canonical_alias TEXT,
    join_rule TEXT,                   -- NULL when the room has no m.room.join_rules
    allowed_room_ids TEXT,            -- JSON list: the room IDs a restricted join rule allows
    history_visibility TEXT,
    guest_access TEXT,
    encryption TEXT,                  -- the m.room.encryption algorithm, if any
    joined_members BIGINT NOT NULL DEFAULT 0,
    invited_members BIGINT NOT NULL DEFAULT 0,
    search_text TEXT NOT NULL DEFAULT '' -- casefolded name, topic and alias for generic_search_term
);
-- /publicRooms walks published rooms biggest first.
CREATE INDEX room_stats_current_joined ON room_stats_current (joined_members, room_id);

-- The events-stream position up to which room_stats_current is known to be
-- up to date (one row). Start-up rebuilds the rooms whose state changed after it.
CREATE TABLE room_stats_position (
    id SMALLINT PRIMARY KEY,          -- always 0
    stream_ordering BIGINT NOT NULL
);
INSERT INTO room_stats_position (id, stream_ordering) VALUES (0, 0);

-- /threads lists a room's thread roots by latest activity; without this it
-- scans every relation of every room.
CREATE INDEX event_relations_room_thread ON event_relations (room_id, rel_type, relates_to_id, stream_ordering);
-- include=participated: the threads a user replied in.
CREATE INDEX event_relations_room_sender ON event_relations (room_id, rel_type, sender);
