-- Core schema: accounts, devices, tokens, profiles, account data, filters,
-- rooms, events (the DAG), state snapshots, memberships, aliases.
-- Written once for SQLite and PostgreSQL: BIGINT columns, SMALLINT booleans
-- (0/1), TEXT JSON. IDs are assigned by the server (stream ID generators),
-- never by the database, so the same SQL works on both engines.

CREATE TABLE users (
    user_id TEXT PRIMARY KEY,
    password_hash TEXT,               -- bcrypt; NULL for users who cannot log in with a password
    creation_ts BIGINT NOT NULL,
    admin SMALLINT NOT NULL DEFAULT 0,
    is_guest SMALLINT NOT NULL DEFAULT 0,
    deactivated SMALLINT NOT NULL DEFAULT 0,
    user_type TEXT,                   -- NULL, 'bot' or 'support' (Synapse's user types)
    appservice_id TEXT,
    shadow_banned SMALLINT NOT NULL DEFAULT 0,
    locked SMALLINT NOT NULL DEFAULT 0,
    suspended SMALLINT NOT NULL DEFAULT 0,
    consent_version TEXT
);

CREATE TABLE devices (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    display_name TEXT,
    last_seen_ts BIGINT,
    last_seen_ip TEXT,
    last_seen_user_agent TEXT,
    hidden SMALLINT NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, device_id)
);

CREATE TABLE access_tokens (
    id BIGINT PRIMARY KEY,
    token TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    device_id TEXT,
    valid_until_ts BIGINT,            -- NULL: never expires
    refresh_token_id BIGINT,          -- the refresh token that minted it, if any
    puppets_user_id TEXT,             -- admin impersonation (Synapse's puppets_user_id)
    used SMALLINT NOT NULL DEFAULT 0, -- set once a refreshed token has been used
    last_validated BIGINT
);
CREATE INDEX access_tokens_user_device ON access_tokens (user_id, device_id);

CREATE TABLE refresh_tokens (
    id BIGINT PRIMARY KEY,
    token TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    expiry_ts BIGINT,
    ultimate_session_expiry_ts BIGINT,
    next_token_id BIGINT              -- set when this token was exchanged
);
CREATE INDEX refresh_tokens_user_device ON refresh_tokens (user_id, device_id);

CREATE TABLE profiles (
    user_id TEXT PRIMARY KEY,
    displayname TEXT,
    avatar_url TEXT,
    fields TEXT                       -- JSON object of custom profile fields (spec v1.16)
);

CREATE TABLE ui_auth_sessions (
    session_id TEXT PRIMARY KEY,
    creation_ts BIGINT NOT NULL,
    uri TEXT NOT NULL,
    method TEXT NOT NULL,
    user_id TEXT,                     -- whose session (NULL during registration)
    completed TEXT NOT NULL,          -- JSON: stage type -> result
    params TEXT                       -- JSON: server-side parameters of the session
);

-- Global (room_id '') and per-room account data; stream_id is the
-- account_data stream position of the last change.
CREATE TABLE account_data (
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    account_data_type TEXT NOT NULL,
    content TEXT NOT NULL,
    stream_id BIGINT NOT NULL,
    PRIMARY KEY (user_id, room_id, account_data_type)
);
CREATE INDEX account_data_stream ON account_data (user_id, stream_id);

CREATE TABLE room_tags (
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    tag TEXT NOT NULL,
    content TEXT NOT NULL,
    PRIMARY KEY (user_id, room_id, tag)
);

CREATE TABLE user_filters (
    user_id TEXT NOT NULL,
    filter_id BIGINT NOT NULL,
    filter_json TEXT NOT NULL,
    PRIMARY KEY (user_id, filter_id)
);

CREATE TABLE openid_tokens (
    token TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    ts_valid_until_ms BIGINT NOT NULL
);

CREATE TABLE rooms (
    room_id TEXT PRIMARY KEY,
    room_version TEXT NOT NULL,
    creator TEXT,
    is_public SMALLINT NOT NULL DEFAULT 0,  -- published in the room directory
    creation_ts BIGINT,
    has_auth_chain_index SMALLINT NOT NULL DEFAULT 0
);

CREATE TABLE room_aliases (
    room_alias TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    creator TEXT
);
CREATE INDEX room_aliases_room ON room_aliases (room_id);

-- Every event we hold, local or remote. `json` is the exact PDU.
-- stream_ordering: position on the events stream (NULL for outliers, which
-- are not in the timeline; negative for backfilled history).
-- topological_ordering: the event's depth, used for /messages pagination.
-- state_group_before/state_group: the state snapshot before / after the event
-- (equal for non-state events).
CREATE TABLE events (
    event_id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    type TEXT NOT NULL,
    state_key TEXT,
    sender TEXT NOT NULL,
    depth BIGINT NOT NULL,
    topological_ordering BIGINT NOT NULL,
    stream_ordering BIGINT UNIQUE,
    origin_server_ts BIGINT NOT NULL,
    received_ts BIGINT NOT NULL,
    outlier SMALLINT NOT NULL DEFAULT 0,
    rejected_reason TEXT,
    soft_failed SMALLINT NOT NULL DEFAULT 0,
    redacted_by TEXT,                 -- event ID of a redaction that applies
    contains_url SMALLINT NOT NULL DEFAULT 0,
    membership TEXT,                  -- content.membership of m.room.member events
    state_group_before BIGINT,
    state_group BIGINT,
    txn_device TEXT,                  -- "user_id|device_id" that sent it with txn_id
    txn_id TEXT,
    replaces_state TEXT,              -- for state events: the state event this one replaced
    json TEXT NOT NULL
);
CREATE INDEX events_room_stream ON events (room_id, stream_ordering);
CREATE INDEX events_room_topo ON events (room_id, topological_ordering, stream_ordering);
CREATE INDEX events_room_ts ON events (room_id, origin_server_ts);
CREATE UNIQUE INDEX events_txn ON events (txn_device, txn_id);

-- The DAG: prev_events and auth_events edges.
CREATE TABLE event_edges (
    event_id TEXT NOT NULL,
    prev_event_id TEXT NOT NULL,
    PRIMARY KEY (event_id, prev_event_id)
);
CREATE INDEX event_edges_prev ON event_edges (prev_event_id);

CREATE TABLE event_auth (
    event_id TEXT NOT NULL,
    auth_id TEXT NOT NULL,
    PRIMARY KEY (event_id, auth_id)
);

CREATE TABLE event_forward_extremities (
    room_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (room_id, event_id)
);

CREATE TABLE event_backward_extremities (
    room_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (room_id, event_id)
);

CREATE TABLE event_relations (
    event_id TEXT PRIMARY KEY,
    relates_to_id TEXT NOT NULL,
    rel_type TEXT NOT NULL,
    aggregation_key TEXT,
    room_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    type TEXT NOT NULL,
    stream_ordering BIGINT
);
CREATE INDEX event_relations_parent ON event_relations (relates_to_id, rel_type, stream_ordering);

CREATE TABLE redactions (
    event_id TEXT PRIMARY KEY,        -- the m.room.redaction event
    redacts TEXT NOT NULL,
    received_ts BIGINT NOT NULL
);
CREATE INDEX redactions_redacts ON redactions (redacts);

-- State snapshots that share structure: a group is its delta on prev_group
-- (NULL prev_group: a full snapshot). delta_depth bounds the chain length.
CREATE TABLE state_groups (
    id BIGINT PRIMARY KEY,
    room_id TEXT NOT NULL,
    prev_group BIGINT,
    delta_depth INTEGER NOT NULL
);

CREATE TABLE state_group_entries (
    state_group BIGINT NOT NULL,
    type TEXT NOT NULL,
    state_key TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (state_group, type, state_key)
);

-- The room's current state (resolved), for fast lookups.
CREATE TABLE current_state_events (
    room_id TEXT NOT NULL,
    type TEXT NOT NULL,
    state_key TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (room_id, type, state_key)
);

-- Current membership of every user in every room we know (one row per pair).
CREATE TABLE room_memberships (
    room_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    membership TEXT NOT NULL,
    event_id TEXT NOT NULL,
    stream_ordering BIGINT,
    sender TEXT NOT NULL,
    display_name TEXT,
    avatar_url TEXT,
    forgotten SMALLINT NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX room_memberships_user ON room_memberships (user_id, membership);
CREATE INDEX room_memberships_room ON room_memberships (room_id, membership);

-- Every membership change of a user, for "rooms the user left/was in at
-- stream position N" (sync leave sections, history visibility).
CREATE TABLE membership_history (
    event_id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    membership TEXT NOT NULL,
    stream_ordering BIGINT NOT NULL
);
CREATE INDEX membership_history_user ON membership_history (user_id, stream_ordering);
CREATE INDEX membership_history_room_user ON membership_history (room_id, user_id, stream_ordering);
