"""HTTP ceiling: `GET /health` requests/s and latency at 64 keep-alive connections.

    ./scripts/bench ceiling [--connections 64] [--seconds 10]
"""

import argparse
import datetime

from _daemon import daemon, machine
from _loadgen import get, run_load


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    with daemon() as (host, port):
        run_load(host, port, get("/health"), connections=args.connections, duration=2)  # warm up
        r = run_load(host, port, get("/health"), connections=args.connections, duration=args.seconds)
    print(f"# ceiling  {datetime.date.today()}  {machine()}")
    print(f"GET /health, {args.connections} connections: {r.summary()}")


if __name__ == "__main__":
    main()
