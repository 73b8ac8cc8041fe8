"""PostgreSQL: the only package that touches asyncio (through `odted.store.db`)."""
