"""The web application: the live map page and the read-only JSON API (``create_app``)."""

from dashboard.app import create_app

__all__ = ["create_app"]
