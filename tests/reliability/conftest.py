"""Reliability tests run on the live-trading fixtures (`tests/live/live_fixtures.py`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "live"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bots"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "users"))

from live_fixtures import *  # noqa: E402,F401,F403
