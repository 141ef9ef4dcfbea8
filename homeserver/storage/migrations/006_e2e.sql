-- To-device inboxes, the device-list stream, end-to-end keys (device keys,
-- one-time and fallback keys, cross-signing keys and signatures) and
-- server-side key backups. Same SQL for SQLite and PostgreSQL.

-- Messages waiting for a device. stream_id: the to_device stream position of
-- the sendToDevice request that queued it (one per request, so a device has
-- at most one message per position). Deleted once the device syncs with a
-- token whose to_device position is >= stream_id.
CREATE TABLE device_inbox (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    stream_id BIGINT NOT NULL,
    message_json TEXT NOT NULL,       -- {"type", "sender", "content"}
    PRIMARY KEY (user_id, device_id, stream_id)
);
CREATE INDEX device_inbox_stream ON device_inbox (stream_id);

-- The highest to_device position ever deleted from device_inbox (one row),
-- so the stream never goes back after a restart with an empty inbox.
CREATE TABLE device_inbox_max_stream (
    id SMALLINT PRIMARY KEY,          -- always 1
    stream_id BIGINT NOT NULL
);
INSERT INTO device_inbox_max_stream (id, stream_id) VALUES (1, 0);

-- sendToDevice transaction IDs seen, per sending device ('' for none):
-- a retry with the same txnId is answered without queueing again.
CREATE TABLE to_device_txns (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    txn_id TEXT NOT NULL,
    stream_id BIGINT NOT NULL,
    ts BIGINT NOT NULL,               -- when first seen; old rows are pruned
    PRIMARY KEY (user_id, device_id, txn_id)
);
CREATE INDEX to_device_txns_ts ON to_device_txns (ts);

-- The device_lists stream: one row per user whose devices, device keys or
-- cross-signing keys changed at that position. Never pruned (its maximum is
-- the stream's position after a restart).
CREATE TABLE device_lists_stream (
    stream_id BIGINT NOT NULL,
    user_id TEXT NOT NULL,
    self_only SMALLINT NOT NULL DEFAULT 0,  -- 1: only the user's own devices are told
                                            -- (their signatures of other users' keys)
    PRIMARY KEY (stream_id, user_id)
);
CREATE INDEX device_lists_stream_user ON device_lists_stream (user_id, stream_id);

-- Device identity keys as uploaded (canonical JSON, signatures included).
CREATE TABLE e2e_device_keys (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    key_json TEXT NOT NULL,
    ts_added_ms BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id)
);

-- Unclaimed one-time keys; a claim deletes the row.
CREATE TABLE e2e_one_time_keys (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    key_id TEXT NOT NULL,
    key_json TEXT NOT NULL,           -- the key: a JSON string or a signed key object
    added_seq BIGINT NOT NULL,        -- upload order: keys are claimed oldest upload first
    PRIMARY KEY (user_id, device_id, algorithm, key_id)
);
CREATE INDEX e2e_one_time_keys_order ON e2e_one_time_keys (user_id, device_id, algorithm, added_seq);

-- At most one fallback key per device and algorithm; claimed when the
-- one-time keys run out, then marked used but kept.
CREATE TABLE e2e_fallback_keys (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    key_id TEXT NOT NULL,
    key_json TEXT NOT NULL,
    used SMALLINT NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, device_id, algorithm)
);

-- A user's current cross-signing keys.
CREATE TABLE e2e_cross_signing_keys (
    user_id TEXT NOT NULL,
    key_type TEXT NOT NULL,           -- 'master', 'self_signing' or 'user_signing'
    public_key TEXT NOT NULL,         -- unpadded base64 ed25519 public key
    key_json TEXT NOT NULL,           -- as uploaded (canonical JSON)
    PRIMARY KEY (user_id, key_type)
);

-- Signatures uploaded through /keys/signatures/upload, shown in /keys/query
-- on the key they sign.
CREATE TABLE e2e_cross_signing_signatures (
    signer_user_id TEXT NOT NULL,
    signer_key_id TEXT NOT NULL,      -- 'ed25519:<public key or device ID>'
    target_user_id TEXT NOT NULL,
    target_key_id TEXT NOT NULL,      -- a device ID, or a master key's public key
    signature TEXT NOT NULL,
    PRIMARY KEY (target_user_id, target_key_id, signer_user_id, signer_key_id)
);

-- Server-side key backup versions. version: per user, 1, 2, ... (never reused;
-- a deleted version keeps its row with deleted = 1).
CREATE TABLE e2e_room_keys_versions (
    user_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    algorithm TEXT NOT NULL,
    auth_data TEXT NOT NULL,          -- JSON object
    etag BIGINT NOT NULL DEFAULT 0,   -- bumped whenever the stored keys change
    deleted SMALLINT NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, version)
);

CREATE TABLE e2e_room_keys (
    user_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    room_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    first_message_index BIGINT NOT NULL,
    forwarded_count BIGINT NOT NULL,
    is_verified SMALLINT NOT NULL,
    session_data TEXT NOT NULL,       -- JSON object, opaque to the server
    PRIMARY KEY (user_id, version, room_id, session_id)
);

-- Device-list tracking asks "who changed membership in these rooms between
-- two events positions" (handlers/device_lists.py) when its in-memory change
-- caches cannot answer; this index makes that a range scan.
CREATE INDEX membership_history_room_stream ON membership_history (room_id, stream_ordering);
