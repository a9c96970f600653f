"""Persistence for atombot: SQLModel tables, the engine and the repository (all queries)."""
