"""The HTTP routers, by concern: :mod:`.predict` (classification) and :mod:`.ops` (operations)."""
