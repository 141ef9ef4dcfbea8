"""The `logging` section: where log lines go and how they look.

`log_config` is Synapse's key; `log_format` and `log_level` are Myelin's, for
the common case that needs no separate logging file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from homeserver.config.options import PATH, option


@dataclass(frozen=True)
class LoggingConfig:
    """Logging set-up."""

    log_config: str | None = option(
        None,
        "A YAML file in Python's logging dictConfig schema (as Synapse uses). When "
        "set it decides everything, and log_format and log_level are ignored.",
        kind=PATH,
    )
    log_format: Literal["text", "json"] = option(
        "text",
        "Myelin-specific. text: one human-readable line per record on stderr; json: "
        "one JSON object per line (with the request id), for log collectors.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = option(
        "INFO", "Myelin-specific. The lowest level logged."
    )
