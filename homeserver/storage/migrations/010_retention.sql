-- Message retention (MSC1763) and status posts (MSC3588 stories as rooms).
-- Same SQL for SQLite and PostgreSQL. See docs/retention.md.

-- Media of this server that events refer to: content.url, content.file.url,
-- content.avatar_url and info.thumbnail_url / info.thumbnail_file.url, one
-- row per (media, event). Written after each persisted batch by
-- handlers.retention.EventMediaIndexer (and caught up at start-up). When a
-- purge removes the last row of a media item, the media is deleted too.
CREATE TABLE event_media (
    media_id TEXT NOT NULL,            -- mxc://<this server>/<media_id>
    event_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    PRIMARY KEY (media_id, event_id)
);
CREATE INDEX event_media_event ON event_media (event_id);

-- The events stream position up to which event_media covers every event.
CREATE TABLE event_media_position (
    id SMALLINT PRIMARY KEY,           -- always 0
    stream_ordering BIGINT NOT NULL
);
INSERT INTO event_media_position (id, stream_ordering) VALUES (0, 0);

-- Media whose last referring event was purged, written in the purge's own
-- transaction and removed once the media (rows, files, thumbnails, S3
-- objects) is deleted: a crash in between loses nothing.
CREATE TABLE retention_media_queue (
    media_id TEXT PRIMARY KEY,
    queued_ts BIGINT NOT NULL
);

-- Status rooms (m.room.create content.type msc3588.stories.stories-room)
-- created by local users, through the io.myelin.status API or any client.
CREATE TABLE status_rooms (
    room_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,             -- the owner: the room's creator
    created_ts BIGINT NOT NULL
);
CREATE INDEX status_rooms_user ON status_rooms (user_id, created_ts);

-- A purge deletes the push actions of the events it removes, by event.
CREATE INDEX IF NOT EXISTS event_push_actions_event ON event_push_actions (event_id);
