"""ASGI entry point for uvicorn workers: ``uvicorn service.main:app``."""

from service.allocator import tune_allocator
from service.api import create_app

# Before the first request allocates anything (see service.allocator).
tune_allocator()

app = create_app()
