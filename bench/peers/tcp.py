"""tcp.py - the asyncio side of cosync's `tcp_pingpong` and `tcp_echo`
workloads, run by hand (WORKLOADS.md has no such workloads, so run.sh
has no peer for them):

    python3 bench/peers/tcp.py tcp_pingpong|tcp_echo [SCALE]

Clients send 64 bytes over loopback TCP, a handler task per connection
reads them and sends them back, and the client reads the echo, with the
loop's socket calls (loop.sock_recv, sock_sendall), as cosync's
cosync_sock_* calls do. tcp_pingpong: 1 connection, 100,000 round trips;
tcp_echo: 100 connections at once, 1,000 round trips each. Connecting is
not timed; every echo is checked. Prints the workloads' line format:
'<workload> <ops> <seconds> <ns_per_op>'.
"""
import asyncio
import socket
import sys
import time

MSG = 64


async def recv_exactly(loop, sock, n):
    buf = b""
    while len(buf) < n:
        chunk = await loop.sock_recv(sock, n - len(buf))
        if not chunk:
            raise ConnectionError("early end")
        buf += chunk
    return buf


async def handler(loop, conn):
    try:
        while True:
            try:
                data = await recv_exactly(loop, conn, MSG)
            except ConnectionError:
                return
            await loop.sock_sendall(conn, data)
    finally:
        conn.close()


async def client(loop, sock, cid, rounds, go, done):
    await go.wait()
    for r in range(rounds):
        out = f"{cid}:{r}".encode().ljust(MSG, b"\0")
        await loop.sock_sendall(sock, out)
        got = await recv_exactly(loop, sock, MSG)
        if got != out:
            print(f"wrong echo on {cid} round {r}", file=sys.stderr)
            sys.exit(1)
        done[0] += 1
    sock.close()


async def main(name, scale):
    conns, rounds = (1, 100_000) if name == "tcp_pingpong" else (100, 1_000)
    rounds = max(1, int(rounds * scale))
    loop = asyncio.get_running_loop()
    lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.bind(("127.0.0.1", 0))
    lst.listen(conns)
    lst.setblocking(False)
    handlers = []

    async def server():
        for _ in range(conns):
            conn, _ = await loop.sock_accept(lst)
            conn.setblocking(False)
            handlers.append(asyncio.create_task(handler(loop, conn)))

    srv = asyncio.create_task(server())
    go = asyncio.Event()
    done = [0]
    clients = []
    for i in range(conns):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        await loop.sock_connect(s, lst.getsockname())
        clients.append(asyncio.create_task(client(loop, s, i, rounds, go, done)))
    await srv
    t0 = time.perf_counter()
    go.set()
    await asyncio.gather(*clients)
    seconds = time.perf_counter() - t0
    await asyncio.gather(*handlers)
    lst.close()
    ops = conns * rounds
    if done[0] != ops:
        print(f"wrong result: {done[0]} round trips, want {ops}", file=sys.stderr)
        sys.exit(1)
    print(f"{name} {ops} {seconds:.6f} {seconds * 1e9 / ops:.1f}")


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in ("tcp_pingpong", "tcp_echo"):
        print("usage: tcp.py tcp_pingpong|tcp_echo [SCALE]", file=sys.stderr)
        sys.exit(2)
    asyncio.run(main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 1.0))
