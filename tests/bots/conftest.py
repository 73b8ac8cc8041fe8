"""Bots tests run on the live-trading fixtures (`tests/live/live_fixtures.py`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "live"))

from live_fixtures import *  # noqa: E402,F401,F403
from bots_fixtures import *  # noqa: E402,F401,F403
