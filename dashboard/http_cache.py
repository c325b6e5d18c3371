"""Conditional GET: polling clients send If-None-Match and get an empty 304 when nothing changed."""

from __future__ import annotations


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
