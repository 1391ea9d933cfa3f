#!/usr/bin/env python3
"""The resident memory of blocked asyncio tasks (the peer of bench/memory.c).

usage: memory.py N

Creates N tasks that each await one asyncio.Event, measures the resident set
(/proc/self/statm) before creating them and once all N are blocked, then sets
the event and gathers them. Prints
    blocked_tasks <N> <seconds_to_spawn_and_block> <bytes_per_task>
and a human line (with VmHWM) on stderr. Exits 1 if a task is missing.
"""
import asyncio
import os
import sys
import time

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def hwm_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return -1


async def main(n):
    ev = asyncio.Event()
    blocked = woken = 0

    async def waiter():
        nonlocal blocked, woken
        blocked += 1
        await ev.wait()
        woken += 1

    tasks = [None] * n  # the caller's list, resident before the baseline
    before = rss_bytes()
    t = time.perf_counter()
    for i in range(n):
        tasks[i] = asyncio.create_task(waiter())
    await asyncio.sleep(0)  # each task runs once, up to its wait
    seconds = time.perf_counter() - t
    after = rss_bytes()
    hwm = hwm_bytes()
    ev.set()
    await asyncio.gather(*tasks)
    if blocked != n or woken != n:
        print(f"memory.py: wrong result: {blocked} blocked, {woken} woken, want {n}",
              file=sys.stderr)
        sys.exit(1)
    per = (after - before) / n
    print(f"blocked_tasks {n} {seconds:.6f} {per:.1f}", flush=True)
    print(f"asyncio: {n} blocked tasks: rss {before / 2**20:.1f} MiB -> {after / 2**20:.1f} MiB "
          f"(VmHWM {hwm / 2**20:.1f} MiB), {per:.0f} bytes ({per / 1024:.2f} KiB) per task; "
          f"spawn+block {seconds:.3f} s", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 2 or not sys.argv[1].isdigit() or int(sys.argv[1]) <= 0:
        print("usage: memory.py N", file=sys.stderr)
        sys.exit(2)
    asyncio.run(main(int(sys.argv[1])))
