"""The asyncio bridge does not hoard cancelled timers (asyncpg arms one per statement)."""

import trio
import trio.testing

from odted.store.db import open_bridge


async def test_cancelled_timers_do_not_pile_up_in_the_bridge_loops_heap():
    async with open_bridge() as loop:
        fired = []
        keep = [loop.call_later(3600, fired.append, i) for i in range(100)]
        for _round in range(5):
            handles = [loop.call_later(600, fired.append, i) for i in range(4000)]
            await trio.testing.wait_all_tasks_blocked()  # the loop moves them into its heap
            for h in handles:
                h.cancel()  # as asyncpg does when a statement answers before its timeout
        assert len(loop._timers) < 2500, "cancelled timers were dropped, not kept until due"
        assert all(h in loop._timers for h in keep), "live timers stay"
        soon = loop.call_later(0.01, fired.append, "soon")
        with trio.fail_after(5):
            while not fired:
                await trio.sleep(0.01)
        assert fired == ["soon"] and not soon.cancelled()
