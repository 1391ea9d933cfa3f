"""call_soon.py - the asyncio side of cosync's `call_soon` workload, run by
hand (WORKLOADS.md has no such workload, so run.sh has no peer for it):

    python3 bench/peers/call_soon.py [SCALE]

100 callbacks, each scheduling itself again with loop.call_soon until n
have run in all, while the main task waits on an event the last one
sets; ops = callbacks run. Checks the callbacks' own count of their runs.
Prints the workloads' line format: 'call_soon <ops> <seconds> <ns_per_op>'.
"""
import asyncio
import sys
import time

CHAINS = 100


async def main(scale):
    n = max(CHAINS, int(1e6 * scale))
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    runs = [0] * CHAINS
    left = n

    def step(i):
        nonlocal left
        runs[i] += 1
        left -= 1
        if left == 0:
            done.set()
        elif left >= CHAINS:
            loop.call_soon(step, i)

    t0 = time.perf_counter()
    for i in range(CHAINS):
        loop.call_soon(step, i)
    await done.wait()
    seconds = time.perf_counter() - t0
    if sum(runs) != n:
        print(f"wrong result: {sum(runs)} callbacks ran, want {n}", file=sys.stderr)
        sys.exit(1)
    print(f"call_soon {n} {seconds:.6f} {seconds * 1e9 / n:.1f}")


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 1.0))
