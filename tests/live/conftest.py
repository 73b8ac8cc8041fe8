"""Live-trading fixtures (defined in `live_fixtures`, shared with other test folders)."""

from live_fixtures import *  # noqa: F401,F403
