"""The HTTP and WebSocket API: ``from service.api import create_app``."""

from service.api.app import create_app

__all__ = ["create_app"]
