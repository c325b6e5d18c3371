"""Conditional GET: polling clients send If-None-Match and get an empty 304 when nothing changed."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from fastapi import Response, status


def _opaque(tag: str) -> str:
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


def not_modified(if_none_match: str | None, etag: str) -> bool:
    """Whether *if_none_match* (RFC 9110: weak comparison, lists, ``*``) matches *etag*."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    return any(_opaque(tag) == _opaque(etag) for tag in if_none_match.split(","))


def strong_etag(body: bytes) -> str:
    """A strong ETag for exactly these bytes (so JSON and CSV of one listing differ)."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def conditional(
    body: bytes,
    media_type: str,
    if_none_match: str | None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """*body* with its ETag, or an empty 304 carrying the same headers when the client has it.

    ``no-cache``: caches may keep the answer but must ask again each time, which is what a
    board polling every few seconds wants.
    """
    etag = strong_etag(body)
    sent = {**(headers or {}), "ETag": etag, "Cache-Control": "no-cache"}
    if not_modified(if_none_match, etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=sent)
    return Response(content=body, media_type=media_type, headers=sent)
