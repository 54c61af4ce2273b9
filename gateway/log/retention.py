"""Retention of the gateway's local SQLite files, run every `retention_interval_s`.

The embedded log loses records older than `embedded_retention_hours` that every consumer
group has committed past; the Kafka-outage spool loses none (the drainer deletes what
Kafka confirmed). Both give their free space back to the file system, so the files
shrink. A run that fails (a full disk can refuse even a delete) is logged and counted as
a write error; the next run tries again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from gateway.aio import wait_set
from gateway.errors import LogUnavailable
from gateway.log.sqlite import SqliteLog
from gateway.ops.logs import get_logger
from gateway.ops.metrics import Metrics

logger = get_logger("gateway.log")


class Retention:
    """Runs `enforce_retention` on each log (by metrics label) and reports it."""

    def __init__(self, logs: Mapping[str, SqliteLog], metrics: Metrics, interval_s: float) -> None:
        self._logs = dict(logs)
        self._metrics = metrics
        self._interval_s = interval_s
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        while not self._stopping.is_set():
            await self.run_once()
            await wait_set(self._stopping, self._interval_s)

    async def stop(self) -> None:
        self._stopping.set()

    async def run_once(self) -> None:
        for label, log in self._logs.items():
            try:
                report = await log.enforce_retention()
            except LogUnavailable as exc:
                logger.warning(
                    "retention did not finish; the next run tries again", log=label, error=str(exc)
                )
            else:
                self._metrics.retention_removed.labels(label).inc(report.removed)
                self._metrics.retention_reclaimed.labels(label).inc(report.reclaimed_bytes)
                if report.removed or report.reclaimed_bytes:
                    logger.info(
                        "retention",
                        log=label,
                        removed=report.removed,
                        reclaimed_bytes=report.reclaimed_bytes,
                    )
