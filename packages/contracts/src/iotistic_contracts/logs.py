"""Wire model of log shipping: the device uploads its log records to the cloud as NDJSON.

Upload: ``POST /api/v1/device/{uuid}/logs`` with the device's own key (``Authorization:
Bearer``), one ``LogRecord`` JSON object per line, ``Content-Type: application/x-ndjson``.
Compressed uploads add ``Content-Encoding: gzip`` (the spec's ``application/x-ndjson+gzip``
content type is accepted as well). The cloud answers ``202`` with ``LogUploadResult``.

Every record carries the device's own sequence number ``seq``: strictly increasing over the
device's life (it survives agent restarts), assigned when the agent stores the record in its
outbox. Uploads go oldest first, so an upload that is retried after a lost answer only repeats
sequence numbers the cloud already has; the cloud stores each (device, seq) once and reports
the repeats as ``duplicates``. Query order is ``seq``: the order the device collected them
(per container stream, the engine's order).
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

LOGS_CONTENT_TYPE: Final = "application/x-ndjson"
LOGS_GZIP_CONTENT_TYPE: Final = "application/x-ndjson+gzip"
# Limits of one upload: the body as sent, the body after decompression, the records in it.
MAX_LOG_UPLOAD_BYTES: Final = 1024 * 1024
MAX_LOG_UPLOAD_DECOMPRESSED_BYTES: Final = 8 * 1024 * 1024
MAX_LOG_RECORDS_PER_UPLOAD: Final = 5000
# A longer message is cut to this many characters and marked ``truncated``.
MAX_LOG_MESSAGE_CHARS: Final = 16 * 1024
MAX_LOG_SEQ: Final = 2**62

LogLevel = Literal["debug", "info", "warn", "error"]
LogSource = Literal["agent", "container"]
LogStream = Literal["stdout", "stderr"]
LOG_LEVELS: Final[tuple[LogLevel, ...]] = ("debug", "info", "warn", "error")

Name = Annotated[str, Field(min_length=1, max_length=255)]


class LogRecord(BaseModel):
    """One line of the device's log.

    ``source`` ``agent``: the agent's own log; ``component`` names the part of the agent
    (the spec's component names: ``agent``, ``containerManager``, ``cloudSync``, ``mqtt`` ...)
    and ``context`` holds its structured fields. ``source`` ``container``: a line a service's
    container printed; ``app`` and ``service`` name it, ``stream`` is ``stdout`` or
    ``stderr``, ``timestamp`` is the engine's (nanoseconds). ``timestamp`` is RFC 3339 in UTC.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: Annotated[int, Field(ge=1, le=MAX_LOG_SEQ)]
    timestamp: Annotated[
        str,
        Field(
            min_length=20,
            max_length=40,
            pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|\+00:00)$",
        ),
    ]
    level: LogLevel
    source: LogSource
    message: Annotated[str, Field(max_length=MAX_LOG_MESSAGE_CHARS)]
    truncated: bool = False
    component: Name | None = None
    context: dict[str, Any] | None = None
    app: Name | None = None
    service: Name | None = None
    stream: LogStream | None = None


class LogUploadResult(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    accepted: Annotated[int, Field(ge=0)]
    duplicates: Annotated[int, Field(ge=0)]
    # The device's highest sequence number the cloud now holds (0: none yet).
    lastSeq: Annotated[int, Field(ge=0)]
