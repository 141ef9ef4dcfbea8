-- Server-side search (positions), the user directory, and content reports.
-- The full-text tables themselves differ per engine: 008_search.sqlite.sql
-- (FTS5) and 008_search.postgres.sql (tsvector + GIN).

-- The events-stream position up to which `event_search` is known to hold
-- every searchable event (one row). Start-up indexes the events after it,
-- e.g. after a crash between an event's commit and its index write.
CREATE TABLE event_search_position (
    id SMALLINT PRIMARY KEY,          -- always 0
    stream_ordering BIGINT NOT NULL
);
INSERT INTO event_search_position (id, stream_ordering) VALUES (0, 0);

-- The user directory (POST /user_directory/search): one row per user it can
-- find. Local users come from their global profile; remote users from their
-- latest join event. Derived data, rebuilt from users, profiles, current
-- state and room_memberships (see storage/stores/user_directory.py).
CREATE TABLE user_directory (
    user_id TEXT PRIMARY KEY,
    display_name TEXT,
    avatar_url TEXT
);

-- Prefix-search words of each directory user: the localpart, "localpart:server",
-- the parts of both split at punctuation, and the display name's words, all
-- casefolded without accents. A search word matches a token it is a prefix of.
CREATE TABLE user_directory_search (
    token TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (token, user_id)
);
CREATE INDEX user_directory_search_user ON user_directory_search (user_id);

-- Users joined to a "public" room: join rule public, or history visibility
-- world_readable (what the spec says every searcher may find).
CREATE TABLE users_in_public_rooms (
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    PRIMARY KEY (user_id, room_id)
);
CREATE INDEX users_in_public_rooms_room ON users_in_public_rooms (room_id);

-- The events-stream position up to which the directory tables are current
-- (one row); -1 until the first full build at start-up.
CREATE TABLE user_directory_position (
    id SMALLINT PRIMARY KEY,          -- always 0
    stream_ordering BIGINT NOT NULL
);
INSERT INTO user_directory_position (id, stream_ordering) VALUES (0, -1);

-- POST /rooms/{roomId}/report/{eventId}. Columns follow Synapse's table of
-- the same name, so its admin API (GET /_synapse/admin/v1/event_reports) maps 1:1.
CREATE TABLE event_reports (
    id BIGINT PRIMARY KEY,
    received_ts BIGINT NOT NULL,
    room_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    user_id TEXT NOT NULL,            -- the reporter
    reason TEXT,
    score BIGINT                      -- removed from the spec in v1.18; kept when a client sends it
);
CREATE INDEX event_reports_received ON event_reports (received_ts);

-- POST /rooms/{roomId}/report (spec v1.13).
CREATE TABLE room_reports (
    id BIGINT PRIMARY KEY,
    received_ts BIGINT NOT NULL,
    room_id TEXT NOT NULL,
    user_id TEXT NOT NULL,            -- the reporter
    reason TEXT NOT NULL
);
CREATE INDEX room_reports_received ON room_reports (received_ts);

-- POST /users/{userId}/report (spec v1.14).
CREATE TABLE user_reports (
    id BIGINT PRIMARY KEY,
    received_ts BIGINT NOT NULL,
    target_user_id TEXT NOT NULL,
    user_id TEXT NOT NULL,            -- the reporter
    reason TEXT NOT NULL
);
CREATE INDEX user_reports_received ON user_reports (received_ts);
