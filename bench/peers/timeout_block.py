"""timeout_block.py - the asyncio side of cosync's `timeout_block` workload,
run by hand (WORKLOADS.md has no such workload, so run.sh has no peer for
it):

    python3 bench/peers/timeout_block.py [SCALE]

One task, n times: `async with asyncio.timeout(1):` around the acquire and
release of a free asyncio.Lock; ops = blocks. Checks that no block expired
and the lock ends free. Prints the workloads' line format:
'timeout_block <ops> <seconds> <ns_per_op>'.
"""
import asyncio
import sys
import time


async def main(scale):
    n = max(1, int(1e6 * scale))
    lock = asyncio.Lock()
    left = 0
    t0 = time.perf_counter()
    for _ in range(n):
        async with asyncio.timeout(1) as cm:
            async with lock:
                pass
        left += not cm.expired()
    seconds = time.perf_counter() - t0
    if left != n or lock.locked():
        print(f"wrong result: {left} blocks unexpired of {n}", file=sys.stderr)
        sys.exit(1)
    print(f"timeout_block {n} {seconds:.6f} {seconds * 1e9 / n:.1f}")


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 1.0))
