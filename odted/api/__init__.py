"""The HTTP and WebSocket API: thin adapters over the runtime and the store."""
