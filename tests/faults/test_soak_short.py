"""The soak, short: 90 simulated minutes at max speed with bots and manual simulations.
Tasks, file descriptors and database connections stay flat; every actor stays alive."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_a_short_soak_holds_tasks_fds_and_connections_flat():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "benches" / "soak.py"), "--bots", "40",
                          "--sims", "10", "--minutes", "90", "--json"],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    samples = result["samples"]
    assert len(samples) >= 9
    after_warmup = samples[2:]
    assert max(s["tasks"] for s in after_warmup) - min(s["tasks"] for s in after_warmup) <= 5
    assert max(s["fds"] for s in after_warmup) - min(s["fds"] for s in after_warmup) <= 3
    assert max(s["db_connections"] for s in samples) <= 12
    assert all(s["actors"] == 50 for s in samples), "no session crashed or ended early"
    growth_mib = (samples[-1]["rss_kib"] - samples[2]["rss_kib"]) / 1024
    assert growth_mib < 120, f"RSS grew {growth_mib:.0f} MiB in 70 simulated minutes"
