"""The media repository: uploads, downloads, thumbnails, URL previews, storage providers.

Its own package: `repository.build_media_repository()` mounts it on a homeserver's
router (the default), and `python -m media_repo -c homeserver.yaml` runs it as a
process of its own sharing the database and the files. It imports from the
homeserver only config, http, storage.database, errors and util (STYLE.md,
section 1); the token lookup is handed in. Design notes: docs/media.md.
"""
