"""Keeps OAuth secrets out of httpx's request log lines.

OC takes the refresh token (and the authorization code) in the query string of
POST /oauth/token, and httpx logs every request URL at INFO. This filter masks those
parameters in the "httpx" logger's lines; `install()` is idempotent.
"""

from __future__ import annotations

import logging
import re
from typing import Final

import httpx

_SECRET_PARAMS: Final = re.compile(r"\b((?:refresh_token|code|client_secret)=)[^&\s\"']+")


def redact(text: str) -> str:
    return _SECRET_PARAMS.sub(r"\1***", text)


class RedactSecretParams(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact(str(arg)) if isinstance(arg, str | httpx.URL) else arg for arg in record.args
            )
        record.msg = redact(record.msg) if isinstance(record.msg, str) else record.msg
        return True


def install(logger_name: str = "httpx") -> None:
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, RedactSecretParams) for f in logger.filters):
        logger.addFilter(RedactSecretParams())
