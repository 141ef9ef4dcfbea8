-- Server-side search on SQLite: an FTS5 table holding the searchable text of
-- each m.room.message (content.body), m.room.name (content.name) and
-- m.room.topic (content.topic / the m.topic text) event. Its rowid is the
-- event's stream ordering (unique), so a redaction deletes its row by key.
-- The other columns are UNINDEXED: filters on them run over the rows the
-- full-text match found, never over the whole table.
CREATE VIRTUAL TABLE event_search USING fts5(
    body,
    event_id UNINDEXED,
    room_id UNINDEXED,
    sender UNINDEXED,
    type UNINDEXED,
    key UNINDEXED,                    -- content.body, content.name or content.topic
    origin_server_ts UNINDEXED,
    tokenize = 'porter unicode61 remove_diacritics 2'
);
