"""The `user_directory` section: who /user_directory/search finds."""

from __future__ import annotations

from dataclasses import dataclass

from homeserver.config.options import option


@dataclass(frozen=True)
class UserDirectoryConfig:
    """The `user_directory` section: /user_directory/search."""

    enabled: bool = option(True, "Serve user directory search.")
    search_all_users: bool = option(
        False,
        "Search every user on this server; false: only users who share a room with "
        "the searcher or are in a public room.",
    )
    prefer_local_users: bool = option(False, "Rank local users above remote ones.")
    exclude_remote_users: bool = option(False, "Only return local users.")
    show_locked_users: bool = option(False, "Include locked accounts in results.")
