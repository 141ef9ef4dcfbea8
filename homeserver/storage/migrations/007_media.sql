-- The media repository (media_repo/): uploaded and cached files, their
-- thumbnails, URL previews. Files are stored by content (SHA-256), so two
-- uploads of the same bytes share one file; rows name media by
-- (server, media ID) and point at the content.

-- One row per distinct content, local or remote: what analysing the bytes
-- found. Thumbnails hang off the content, not the media ID.
CREATE TABLE media_content (
    sha256 TEXT PRIMARY KEY,           -- hex SHA-256 of the bytes; names the file
    length BIGINT NOT NULL,
    sniffed_type TEXT,                 -- type recognised from the bytes (NULL: not recognised)
    width INTEGER,                     -- images and videos, after EXIF orientation
    height INTEGER,
    duration_ms BIGINT,                -- videos and audio
    animated SMALLINT NOT NULL DEFAULT 0,  -- animated GIF/WebP/PNG
    blurhash TEXT,                     -- MSC2448 placeholder, images and videos
    too_large SMALLINT NOT NULL DEFAULT 0, -- more pixels than max_image_pixels: never thumbnailed
    created_ts BIGINT NOT NULL
);

-- Media uploaded to this server (mxc://<our server>/<media_id>).
-- A row with upload_ts NULL is an MXC URI made by POST /media/v1/create and
-- not yet uploaded to; it lapses at unused_expires_ts.
CREATE TABLE local_media (
    media_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    created_ts BIGINT NOT NULL,
    upload_ts BIGINT,
    unused_expires_ts BIGINT,
    media_type TEXT,                   -- the Content-Type served (claimed, checked by sniffing)
    media_length BIGINT,
    upload_name TEXT,
    sha256 TEXT,
    last_access_ts BIGINT,             -- last download or thumbnail (retention), coarse
    quarantined_by TEXT,               -- admin who quarantined it; served as 404 while set
    safe_from_quarantine SMALLINT NOT NULL DEFAULT 0,  -- "protected" by an admin
    authenticated SMALLINT NOT NULL DEFAULT 0,  -- uploaded under the legacy-endpoint freeze
    url_cache TEXT                     -- the URL this was fetched from, for URL-preview images
);
CREATE INDEX local_media_user ON local_media (user_id, created_ts);
CREATE INDEX local_media_sha256 ON local_media (sha256);
CREATE INDEX local_media_access ON local_media (last_access_ts);

-- Media of other servers cached here, beside local media: same content files.
CREATE TABLE remote_media (
    media_origin TEXT NOT NULL,
    media_id TEXT NOT NULL,
    media_type TEXT,
    media_length BIGINT NOT NULL,
    upload_name TEXT,
    sha256 TEXT NOT NULL,
    created_ts BIGINT NOT NULL,        -- when the cache was filled (the freeze compares this)
    last_access_ts BIGINT,
    quarantined_by TEXT,
    authenticated SMALLINT NOT NULL DEFAULT 0,
    PRIMARY KEY (media_origin, media_id)
);
CREATE INDEX remote_media_sha256 ON remote_media (sha256);
CREATE INDEX remote_media_access ON remote_media (last_access_ts);

-- Thumbnails of one content. (req_width, req_height, method) is the box the
-- thumbnail was made for; width/height are its real size (never upscaled).
CREATE TABLE media_thumbnails (
    sha256 TEXT NOT NULL,
    req_width INTEGER NOT NULL,
    req_height INTEGER NOT NULL,
    method TEXT NOT NULL,              -- crop or scale
    animated SMALLINT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    length BIGINT NOT NULL,
    created_ts BIGINT NOT NULL,
    PRIMARY KEY (sha256, req_width, req_height, method, animated)
);

-- URL previews, cached until expires_ts. og is the JSON answer.
CREATE TABLE url_previews (
    url TEXT NOT NULL,
    fetched_ts BIGINT NOT NULL,
    expires_ts BIGINT NOT NULL,
    og TEXT NOT NULL,
    media_id TEXT,                     -- local media holding the preview image, if any
    PRIMARY KEY (url, fetched_ts)
);
CREATE INDEX url_previews_expires ON url_previews (expires_ts);
