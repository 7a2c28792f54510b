"""Venue modules: one per broker (signing scheme, endpoint lists, scopes, freshness)."""
