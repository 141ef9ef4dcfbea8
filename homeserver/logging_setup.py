"""Logging: human text or JSON lines, with the request ID on every record."""

from __future__ import annotations

import json
import logging
import logging.config
import sys
import time

import yaml

from homeserver.http.request_context import RequestIdFilter


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        user_id = getattr(record, "user_id", None)
        if user_id:
            out["user_id"] = user_id
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def setup_logging(config) -> None:
    log_cfg = config.logging
    if getattr(log_cfg, "log_config", None):
        with open(log_cfg.log_config, encoding="utf-8") as f:
            logging.config.dictConfig(yaml.safe_load(f))
    else:
        handler = logging.StreamHandler(sys.stderr)
        if getattr(log_cfg, "log_format", "text") == "json":
            handler.setFormatter(JsonFormatter())
        else:
            handler.setFormatter(logging.Formatter(
                "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
        root = logging.getLogger()
        root.handlers[:] = [handler]
        root.setLevel(getattr(log_cfg, "log_level", "INFO").upper() if isinstance(getattr(log_cfg, "log_level", "INFO"), str) else "INFO")
    for h in logging.getLogger().handlers:
        h.addFilter(RequestIdFilter())
    from twisted.python import log as twisted_log

    twisted_log.PythonLoggingObserver(loggerName="twisted").start()
