-- event_push_summary rows are upserted for every joined local member on each
-- notifying event (1,000 rows for a message in a 1,000-member room). The
-- (user_id, stream_ordering) index made every one of those updates touch a
-- second index and, on PostgreSQL, ruled out heap-only (HOT) updates; it cost
-- more than half of the counting write. The one query that used it ("rooms
-- whose counts moved since the sync token") reads a single user's rows, which
-- the primary key (user_id, room_id, thread_id) already finds.
DROP INDEX IF EXISTS event_push_summary_user_stream;
