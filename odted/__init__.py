"""odted: live paper trading and strategy bots for 0DTE SPX index options."""

__version__ = "0.1.0"
