-- Server-side search on PostgreSQL: one row per searchable event with its
-- text as an English tsvector behind a GIN index (as Synapse does).
CREATE TABLE event_search (
    event_id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    type TEXT NOT NULL,
    key TEXT NOT NULL,                -- content.body, content.name or content.topic
    vector TSVECTOR NOT NULL,
    origin_server_ts BIGINT NOT NULL,
    stream_ordering BIGINT NOT NULL
);
CREATE INDEX event_search_fts ON event_search USING GIN (vector);
CREATE INDEX event_search_stream ON event_search (stream_ordering);

-- User directory prefix search: LIKE 'word%' uses this index whatever the
-- database's collation (the table is created in 008_reports_user_directory.sql).
CREATE INDEX user_directory_search_prefix ON user_directory_search (token text_pattern_ops);
