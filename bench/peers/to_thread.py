"""to_thread.py - the asyncio side of cosync's `to_thread` workload, run by
hand (WORKLOADS.md has no such workload, so run.sh has no peer for it):

    python3 bench/peers/to_thread.py [SCALE]

One task hands n trivial jobs, one after the other, to the default
executor (asyncio.to_thread) and checks their results. The executor's
thread is started before the clock. Prints the workloads' line format:
'to_thread <ops> <seconds> <ns_per_op>'.
"""
import asyncio
import sys
import time


def job_return_arg(x):
    return x


async def main(scale):
    n = max(1, int(2e4 * scale))
    await asyncio.to_thread(job_return_arg, 0)
    total = 0
    t0 = time.perf_counter()
    for i in range(n):
        total += await asyncio.to_thread(job_return_arg, i)
    seconds = time.perf_counter() - t0
    if total != n * (n - 1) // 2:
        print(f"wrong result: sum {total}", file=sys.stderr)
        sys.exit(1)
    print(f"to_thread {n} {seconds:.6f} {seconds * 1e9 / n:.1f}")


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 1.0))
