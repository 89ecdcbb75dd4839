"""DDFS error answers: an HTTP status and the exact plain-text body of ddfs.md 2.3."""

from __future__ import annotations

BAD_TOKEN = "Incorrect or missing token."
INVALID_TAG = "Invalid tag"
INVALID_URLS = "Invalid url object"
INVALID_ATTR = "Invalid attribute key or value"
TOO_MANY_ATTRS = "Too many attributes"
ATTR_NAME_TOO_BIG = "Attribute name too big."
ATTR_VALUE_TOO_BIG = "Attribute value too big."
INVALID_BODY = "Invalid request body."
INVALID_REQUEST = "Invalid request."
NOT_ENOUGH_NODES = "Not enough nodes for replicas."
TAG_NOT_FOUND = "Tag not found."
ATTR_NOT_FOUND = "Tag attribute not found."
UNKNOWN_HOST = "Unknown host."
NOT_FOUND = "Not found."
TRY_AGAIN = "Temporary server error. Try again."


class DDFSError(Exception):
    """An error answer of the master's ``/ddfs/`` endpoints."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, message)
        self.status = status
        self.message = message

    def __str__(self) -> str:
        return "%d %s" % (self.status, self.message)


def internal(reason: str) -> DDFSError:
    """500 ``Internal server error: <reason>`` (e.g. ``too_many_failed_nodes``)."""
    return DDFSError(500, "Internal server error: %s" % reason)


def unauthorized() -> DDFSError:
    return DDFSError(401, BAD_TOKEN)
