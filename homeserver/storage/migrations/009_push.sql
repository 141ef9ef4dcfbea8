-- Push rules, pushers and per-user push actions (notifications).
-- Same SQL for SQLite and PostgreSQL.

-- Rules a user defined. Server-default rules are not stored (they are data in
-- protocol/push_rules_defaults.py); a user's changes to them are in
-- push_rules_defaults below.
CREATE TABLE push_rules (
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,                    -- override, content, room, sender, underride
    rule_id TEXT NOT NULL,                 -- unique within (user, kind)
    priority BIGINT NOT NULL,              -- order within (user, kind): lower is more important
    rule TEXT NOT NULL,                    -- JSON: {"actions", "conditions" | "pattern"}
    enabled SMALLINT NOT NULL,
    PRIMARY KEY (user_id, kind, rule_id)
);

-- A user's changes to server-default rules (PUT .../enabled or .../actions).
CREATE TABLE push_rules_defaults (
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    rule_id TEXT NOT NULL,                 -- a server-default rule ID (starts with ".")
    enabled SMALLINT,                      -- NULL: the default's own
    actions TEXT,                          -- JSON list; NULL: the default's own
    PRIMARY KEY (user_id, kind, rule_id)
);

-- The push_rules stream: each user's latest change. A sync with a token
-- before stream_id sends the user's whole ruleset as m.push_rules.
CREATE TABLE push_rules_stream (
    user_id TEXT PRIMARY KEY,
    stream_id BIGINT NOT NULL
);
CREATE INDEX push_rules_stream_id ON push_rules_stream (stream_id);

-- HTTP pushers (POST /pushers/set), one per (user, app_id, pushkey).
CREATE TABLE pushers (
    user_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    pushkey TEXT NOT NULL,
    kind TEXT NOT NULL,                    -- http
    app_display_name TEXT NOT NULL,
    device_display_name TEXT NOT NULL,
    profile_tag TEXT,
    lang TEXT NOT NULL,
    data TEXT NOT NULL,                    -- JSON: url, format and whatever the client added
    device_id TEXT,                        -- the device that set it: deleting the device deletes it
    pushkey_ts BIGINT NOT NULL,            -- ms when the pushkey was last set
    last_stream_ordering BIGINT NOT NULL,  -- events position up to which notifications were handled
                                           -- (sent, or given up on): delivery resumes after it
    failing_since BIGINT,                  -- ms of the first failure of the notification being retried
    PRIMARY KEY (user_id, app_id, pushkey)
);
CREATE INDEX pushers_app_pushkey ON pushers (app_id, pushkey);
CREATE INDEX pushers_device ON pushers (user_id, device_id);

-- The actions push rules gave each local user for each event that notifies
-- them (GET /notifications; the pushers read their work from here). Written
-- with the event batch's unread counts in one transaction; old rows are
-- pruned (handlers/notifications.py).
CREATE TABLE event_push_actions (
    user_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    stream_ordering BIGINT NOT NULL,       -- the event's position
    thread_id TEXT NOT NULL,               -- 'main' or a thread root's event ID
    actions TEXT NOT NULL,                 -- JSON list of the matching rule's actions
    notif SMALLINT NOT NULL,               -- 1; 0 only inside the writing transaction (a placeholder)
    highlight SMALLINT NOT NULL,           -- 1 if the highlight tweak is set
    received_ts BIGINT NOT NULL,           -- ms when the event was counted ("ts" in /notifications)
    PRIMARY KEY (user_id, event_id)
);
CREATE INDEX event_push_actions_user_stream ON event_push_actions (user_id, stream_ordering);
CREATE INDEX event_push_actions_received ON event_push_actions (received_ts);
