#!/usr/bin/env python3
"""Open-loop HTTP/1.1 load generator for bench/run (Python stdlib only).

    python3 bench/loadgen.py SPEC.json        # or `-` to read the spec from stdin

The spec names a port, a duration and one or more *parts* that run together on one
event loop; the result is one JSON object on stdout, progress goes to stderr.

    {"port": 3991, "seconds": 30, "timeout": 30, "seed": 1,
     "progress": 10, "rss_pid": 12345, "quiet": false,
     "parts": [
       {"name": "gif", "kind": "open", "paths": ["/media/fitnessally/ex-0001.gif", ...],
        "rate_per_min": 1000, "offsets_ms": [0, 1, 8, 9, 27, 29, 30]},
       {"name": "slow", "kind": "slow", "paths": [...], "clients": 1000,
        "slow_fraction": 0.5, "read_bytes": [2048, 8192], "read_interval_ms": [100, 200],
        "rcvbuf": 16384, "drop_after": [16384, 524288], "pause_ms": [200, 1000]}]}

`open` parts replay a schedule: bursts of len(offsets_ms) requests (the offsets are
milliseconds from the burst's start; the default is the seeds' burst of 7 requests
in 30 ms, seed 001), bursts spaced so that `rate_per_min` requests arrive per
minute. Every request starts at its scheduled time whether or not earlier ones
have finished (open loop: no coordinated omission) and its latency is measured
from that scheduled time to the last body byte. How late the generator itself
started a request (`lag`) is reported separately; if it falls behind, the part
says so (`behind: true`) instead of silently under-driving the server.

Connections: each open part keeps a keep-alive pool that grows on demand. A
request takes the most recently used idle connection, or opens a new one when
none is idle, so a request never waits for another request's connection
(connections in use are not shared; HTTP/1.1 has no multiplexing). That is what
a browser does with its per-host connection pool, and it keeps the measurement
about serving files rather than about TCP handshakes and TIME_WAIT build-up
(a fresh connection per request at 10,000 req/min would leave ~10,000 sockets in
TIME_WAIT). Connections idle for more than `max_idle` seconds (2 s, under
Node's 5 s keep-alive timeout) are closed instead of reused; a reused connection
the server closed before answering is retried once on a fresh one (counted as
`stale_retries`, not as an error), as browsers do.

`slow` parts run `clients` clients at once. Each is, for the whole run, either a
slow reader (requests a GIF and reads `read_bytes` every `read_interval_ms`
through a small receive buffer `rcvbuf`, holding its connection until the
body or the run ends) or a disconnector (reads `drop_after` bytes at full
speed and closes mid-transfer, the unread bytes making the kernel reset the
connection); after each attempt it pauses `pause_ms` and starts over on a new
connection. Roles, paths and sizes are deterministic (seeded per client).
At the end of the run every client is cancelled and every socket closed;
`outcomes` says what each was doing then.

Bodies are read into one shared 1 MiB scratch buffer and discarded, so reading
hundreds of MB/s costs a few large `recv_into` calls and no allocation.
"""
import asyncio, json, math, os, random, resource, socket, sys, time
from collections import Counter

SEED_BURST_MS = (0, 1, 8, 9, 27, 29, 30)  # seed 001: 7 GET /api/media at .148 .149 .156 .157 .175 .177 .178
SCRATCH = memoryview(bytearray(1 << 20))  # body bytes are discarded here (only their count matters)
HEAD_MAX = 16384


class Stale(Exception):
    """The server closed a (reused) connection before any byte of the response."""


class Protocol(Exception):
    pass


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def raise_nofile(want=65536):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def tree_rss_mb(pid):
    """Resident memory of pid and its descendants (for progress lines)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in open(f"/proc/{p}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for t in os.listdir(f"/proc/{p}/task"):
                todo.extend(int(k) for k in open(f"/proc/{p}/task/{t}/children").read().split())
        except OSError:
            pass
    return total / 1024


def pct(sorted_vals, p):
    if not sorted_vals:
        return None
    k = max(0, math.ceil(p / 100 * len(sorted_vals)) - 1)
    return sorted_vals[k]


def summary_ms(vals):
    s = sorted(vals)
    r = lambda v: None if v is None else round(v * 1000, 2)
    return {"p50": r(pct(s, 50)), "p99": r(pct(s, 99)), "p999": r(pct(s, 99.9)), "max": r(s[-1] if s else None), "n": len(s)}


async def connect(loop, port, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    try:
        await loop.sock_connect(s, ("127.0.0.1", port))
    except BaseException:
        s.close()
        raise
    return s


async def read_head(loop, sock, buf, reused):
    """Reads up to the end of the response head into buf. Returns (status, headers, body_start, filled)."""
    filled, mv = 0, memoryview(buf)
    while True:
        try:
            n = await loop.sock_recv_into(sock, mv[filled:])
        except ConnectionResetError:
            if filled == 0 and reused:
                raise Stale()
            raise
        if n == 0:
            if filled == 0 and reused:
                raise Stale()
            raise EOFError("closed before the response head" if filled == 0 else "closed inside the response head")
        end = buf.find(b"\r\n\r\n", max(0, filled - 3), filled + n)
        filled += n
        if end >= 0:
            break
        if filled == len(buf):
            raise Protocol("response head too large")
    lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split(" ", 2)[1])
    except (IndexError, ValueError):
        raise Protocol(f"bad status line {lines[0][:60]!r}")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, end + 4, filled


async def read_body(loop, sock, method, status, headers, buf, pos, filled):
    """Reads and discards the body. Returns (body bytes, connection reusable)."""
    keep = headers.get("connection", "").lower() != "close"
    if method == "HEAD" or status in (204, 304) or status < 200:
        return 0, keep
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return await read_chunked(loop, sock, buf, pos, filled), keep
    got = filled - pos
    cl = headers.get("content-length")
    if cl is not None:
        cl = int(cl)
        remaining = cl - got
        if remaining < 0:
            raise Protocol("more bytes than Content-Length")
        while remaining:
            n = await loop.sock_recv_into(sock, SCRATCH[:min(remaining, len(SCRATCH))])
            if n == 0:
                raise EOFError("body truncated")
            remaining -= n
        return cl, keep
    while True:  # no length: until EOF
        n = await loop.sock_recv_into(sock, SCRATCH)
        if n == 0:
            return got, False
        got += n


async def read_chunked(loop, sock, buf, pos, filled):
    """Chunked transfer coding (oipd streams /api/records this way). Returns data bytes."""
    pending, total, state, need = bytes(buf[pos:filled]), 0, "size", 0
    mv = memoryview(buf)
    while True:
        i = 0
        while i < len(pending):
            if state in ("size", "trailer"):
                j = pending.find(b"\r\n", i)
                if j < 0:
                    break
                line, i = pending[i:j], j + 2
                if state == "size":
                    need = int(line.split(b";")[0].strip() or b"x", 16)
                    state = "data" if need else "trailer"
                elif not line:
                    return total
            elif state == "data":
                take = min(need, len(pending) - i)
                need, total, i = need - take, total + take, i + take
                if need == 0:
                    state, need = "crlf", 2
            elif state == "crlf":
                take = min(need, len(pending) - i)
                need, i = need - take, i + take
                if need == 0:
                    state = "size"
        pending = pending[i:]
        if len(pending) > HEAD_MAX:
            raise Protocol("chunk size line too long")
        n = await loop.sock_recv_into(sock, mv)
        if n == 0:
            raise EOFError("chunked body truncated")
        pending += bytes(mv[:n])


class Stats:
    def __init__(self):
        self.lat, self.ttfb, self.lag = [], [], []
        self.status, self.errors = Counter(), Counter()
        self.bytes = self.scheduled = self.done = self.inflight = self.max_inflight = 0
        self.opened = self.stale = self.s503_retry_after = 0
        self.first = self.last = None

    def finish_status(self, status, headers):
        self.status[status] += 1
        if status == 503 and "retry-after" in headers:
            self.s503_retry_after += 1


class OpenPart:
    """A replayed schedule of bursts; keep-alive pool that grows on demand."""

    def __init__(self, spec, g):
        self.name, self.g = spec["name"], g
        self.paths = spec["paths"]
        self.offsets = [o / 1000 for o in spec.get("offsets_ms", SEED_BURST_MS)]
        self.rate = spec["rate_per_min"]
        self.interval = len(self.offsets) * 60 / self.rate
        self.start = spec.get("start", 0)
        self.pick = spec.get("pick", "random")
        self.max_idle = spec.get("max_idle", 2.0)
        self.rng = random.Random(spec.get("seed", g.seed))
        hdrs = "".join(f"{k}: {v}\r\n" for k, v in spec.get("headers", {}).items())
        self.head_tail = f" HTTP/1.1\r\nHost: 127.0.0.1:{g.port}\r\nUser-Agent: oipd-bench-loadgen\r\nAccept: */*\r\n{hdrs}\r\n".encode()
        self.pool = []  # (socket, header buffer, idle since); LIFO
        self.st = Stats()
        self.tasks = set()

    def describe(self):
        return {"kind": "open", "rate_per_min": self.rate, "burst": len(self.offsets), "burst_ms": round(self.offsets[-1] * 1000, 1),
                "burst_every_ms": round(self.interval * 1000, 1), "target_rps": round(self.rate / 60, 2)}

    async def schedule(self, t0, t_end):
        loop, k, i = asyncio.get_running_loop(), 0, 0
        while True:
            base = t0 + self.start + k * self.interval
            if base >= t_end:
                break
            for off in self.offsets:
                t = base + off
                delay = t - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                path = self.rng.choice(self.paths) if self.pick == "random" else self.paths[i % len(self.paths)]
                i += 1
                self.st.scheduled += 1
                task = loop.create_task(self.one(t, path))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            k += 1

    def take(self, now):
        while self.pool:
            sock, buf, since = self.pool.pop()
            if now - since <= self.max_idle:
                return sock, buf
            sock.close()
        return None

    async def one(self, sched, path):
        loop, st = self.g.loop, self.st
        start = loop.time()
        st.lag.append(start - sched)
        st.inflight += 1
        st.max_inflight = max(st.max_inflight, st.inflight)
        if st.first is None:
            st.first = sched
        try:
            await asyncio.wait_for(self.exchange(sched, path), self.g.timeout)
        except asyncio.TimeoutError:
            st.errors["timeout"] += 1
        except (OSError, EOFError, Protocol, Stale) as e:
            st.errors[type(e).__name__] += 1
        finally:
            st.inflight -= 1
            st.done += 1
            st.last = loop.time()

    async def exchange(self, sched, path):
        loop, st = self.g.loop, self.st
        req = b"GET " + path.encode() + self.head_tail
        got = self.take(loop.time())
        conn = None
        try:
            while True:
                reused = got is not None
                if got is None:
                    got = (await connect(loop, self.g.port), bytearray(HEAD_MAX))
                    st.opened += 1
                conn = got
                sock, buf = conn
                try:
                    await loop.sock_sendall(sock, req)
                except (BrokenPipeError, ConnectionResetError):
                    if not reused:
                        raise
                    stale = True
                else:
                    try:
                        status, headers, pos, filled = await read_head(loop, sock, buf, reused)
                        stale = False
                    except Stale:  # read_head raises it only on a reused connection, before any byte
                        stale = True
                if stale:  # a kept-alive connection the server had already closed: retry once, fresh
                    st.stale += 1
                    sock.close()
                    conn = got = None
                    continue
                break
            st.ttfb.append(loop.time() - sched)
            n, keep = await read_body(loop, sock, "GET", status, headers, buf, pos, filled)
            now = loop.time()
            st.lat.append(now - sched)
            st.bytes += n
            st.finish_status(status, headers)
            if keep:
                self.pool.append((sock, buf, now))
                conn = None
        finally:
            if conn is not None:
                conn[0].close()

    def close(self):
        for sock, _, _ in self.pool:
            sock.close()
        self.pool.clear()

    def result(self, t0, t_end):
        st = self.st
        span = max(t_end - t0 - self.start, (st.last or 0) - (t0 + self.start), 1e-9)
        ok = sum(n for s, n in st.status.items() if 200 <= s < 400)
        lag = summary_ms(st.lag)
        late = sum(1 for x in st.lag if x > 0.010)
        target = self.rate / 60
        achieved = st.done / span
        behind = []
        if lag["p99"] is not None and lag["p99"] > 10:
            behind.append(f"start lag p99 {lag['p99']:.1f} ms > 10 ms")
        if lag["max"] is not None and lag["max"] > 100:
            behind.append(f"start lag max {lag['max']:.0f} ms > 100 ms")
        expected = math.ceil((t_end - t0 - self.start) / self.interval) * len(self.offsets)
        if st.scheduled < 0.98 * expected:
            behind.append(f"scheduled {st.scheduled} of {expected}")
        return {**self.describe(), "requests": st.done, "scheduled": st.scheduled, "ok": ok,
                "status": {str(k): v for k, v in sorted(st.status.items())},
                "s503": st.status.get(503, 0), "s503_retry_after": st.s503_retry_after,
                "non_ok": sum(n for s, n in st.status.items() if not (200 <= s < 400) and s != 503),
                "errors": sum(st.errors.values()), "error_kinds": dict(st.errors),
                "bytes": st.bytes, "seconds": round(span, 3), "achieved_rps": round(achieved, 2), "mbps": round(st.bytes / span / 1e6, 2),
                "latency_ms": summary_ms(st.lat), "ttfb_ms": summary_ms(st.ttfb), "lag_ms": lag, "late_over_10ms": late,
                "behind": behind, "connections_opened": st.opened, "stale_retries": st.stale, "max_inflight": st.max_inflight}


class SlowPart:
    """Clients that read slowly or disconnect mid-transfer, `clients` of them at once."""

    def __init__(self, spec, g):
        self.name, self.g, self.spec = spec["name"], g, spec
        self.paths = spec["paths"]
        self.clients = spec["clients"]
        self.slow_fraction = spec.get("slow_fraction", 0.5)
        self.read_bytes = spec.get("read_bytes", [2048, 8192])
        self.interval = [x / 1000 for x in spec.get("read_interval_ms", [100, 200])]
        self.rcvbuf = spec.get("rcvbuf", 16384)
        self.drop_after = spec.get("drop_after", [16384, 524288])
        self.pause = [x / 1000 for x in spec.get("pause_ms", [200, 1000])]
        self.ramp = spec.get("ramp", 2.0)
        self.start = spec.get("start", 0)
        self.seed = spec.get("seed", g.seed)
        self.st = Stats()
        self.c = Counter()  # connections and outcomes ("slow: 200", "dropped mid-transfer", "at the end: …")
        self.open_now = self.max_open = 0
        self.tasks = []

    def describe(self):
        return {"kind": "slow", "clients": self.clients, "slow_fraction": self.slow_fraction, "read_bytes": self.read_bytes,
                "read_interval_ms": [x * 1000 for x in self.interval], "rcvbuf": self.rcvbuf, "drop_after": self.drop_after}

    async def schedule(self, t0, t_end):
        loop = self.g.loop
        for i in range(self.clients):
            t = t0 + self.start + self.ramp * i / self.clients
            delay = t - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.tasks.append(loop.create_task(self.client(i, t_end)))

    async def client(self, idx, t_end):
        loop, st, c = self.g.loop, self.st, self.c
        rng = random.Random(self.seed * 100003 + idx)
        buf = bytearray(4096)
        mv = memoryview(buf)
        slow = rng.random() < self.slow_fraction  # each client keeps its role, so the mix holds over the run
        while loop.time() < t_end:
            path = rng.choice(self.paths)
            sock, where = None, "connecting"
            try:
                sock = await connect(loop, self.g.port, self.rcvbuf if slow else None)
                c["connections"] += 1
                self.open_now += 1
                self.max_open = max(self.max_open, self.open_now)
                where = "waiting for the response head"
                t = loop.time()
                await loop.sock_sendall(sock, b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: oipd-bench-slow\r\n\r\n")
                status, headers, pos, filled = await read_head(loop, sock, buf, False)
                st.ttfb.append(loop.time() - t)
                st.finish_status(status, headers)
                c[f"{'slow' if slow else 'drop'}: {status}"] += 1
                got = filled - pos
                if status != 200:
                    where = "reading an error body"
                    await read_body(loop, sock, "GET", status, headers, buf, pos, filled)
                elif slow:
                    where = "slow reading"
                    size = int(headers.get("content-length", "0"))
                    while got < size:
                        await asyncio.sleep(rng.uniform(*self.interval))
                        n = await loop.sock_recv_into(sock, mv[:min(rng.randint(*self.read_bytes), size - got, len(buf))])
                        if n == 0:
                            raise EOFError("closed during a slow read")
                        got += n
                    c["slow read completed"] += 1
                else:
                    where = "reading before the drop"
                    stop = min(rng.randint(*self.drop_after), max(int(headers.get("content-length", "0")) - 1, 0))
                    while got < stop:
                        n = await loop.sock_recv_into(sock, SCRATCH[:stop - got])
                        if n == 0:
                            raise EOFError("closed before the drop point")
                        got += n
                    c["dropped mid-transfer"] += 1
                st.bytes += max(got, 0)
                where = None
            except (OSError, EOFError, Protocol) as e:
                st.errors[f"{type(e).__name__} ({where})"] += 1
                where = None
            finally:  # on cancellation (the end of the run) `where` says what the client was doing
                if where is not None:
                    c[f"at the end: {where}"] += 1
                if sock is not None:
                    sock.close()  # unread bytes in the receive buffer: the kernel resets the connection
                    self.open_now -= 1
            await asyncio.sleep(rng.uniform(*self.pause))

    def close(self):
        for t in self.tasks:
            t.cancel()

    def result(self, t0, t_end):
        st = self.st
        return {**self.describe(), "name": self.name, "connections": self.c["connections"], "max_open": self.max_open,
                "status": {str(k): v for k, v in sorted(st.status.items())}, "s503": st.status.get(503, 0),
                "s503_retry_after": st.s503_retry_after,
                "non_ok": sum(n for s, n in st.status.items() if not (200 <= s < 400) and s != 503),
                "errors": sum(st.errors.values()), "error_kinds": dict(st.errors), "outcomes": dict(sorted(self.c.items())),
                "bytes": st.bytes, "ttfb_ms": summary_ms(st.ttfb)}


class Generator:
    def __init__(self, spec):
        self.spec, self.port = spec, spec["port"]
        self.seconds = spec["seconds"]
        self.timeout = spec.get("timeout", 30)
        self.seed = spec.get("seed", 1)
        self.parts = [(OpenPart if p["kind"] == "open" else SlowPart)(p, self) for p in spec["parts"]]

    async def progress(self, t0, every):
        pid = self.spec.get("rss_pid")
        while True:
            await asyncio.sleep(every)
            el = self.loop.time() - t0
            bits = []
            for p in self.parts:
                if isinstance(p, OpenPart):
                    bits.append(f"{p.name} {p.st.done}/{p.st.scheduled}" + (f" err {sum(p.st.errors.values())}" if p.st.errors else "")
                                + (f" 503 {p.st.status[503]}" if p.st.status.get(503) else ""))
                else:
                    bits.append(f"{p.name} {p.open_now} open, {p.c['connections']} conns" + (f" err {sum(p.st.errors.values())}" if p.st.errors else "")
                                + (f" 503 {p.st.status[503]}" if p.st.status.get(503) else ""))
            rss = f", server RSS {tree_rss_mb(pid):.1f} MB" if pid else ""
            log(f"   [{el:5.0f}/{self.seconds} s] " + "; ".join(bits) + rss)

    async def run(self):
        self.loop = loop = asyncio.get_running_loop()
        cpu0, wall0 = time.process_time(), time.time()
        t0 = loop.time() + 0.05
        t_end = t0 + self.seconds
        prog = loop.create_task(self.progress(t0, self.spec["progress"])) if self.spec.get("progress") else None
        await asyncio.gather(*(p.schedule(t0, t_end) for p in self.parts))
        # slow clients stop at t_end; open-loop requests already started get to finish (each has its own timeout)
        delay = t_end - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        for p in self.parts:
            if isinstance(p, SlowPart):
                p.close()
        pending = [t for p in self.parts for t in (p.tasks if isinstance(p, SlowPart) else list(p.tasks))]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        if prog:
            prog.cancel()
        for p in self.parts:
            if isinstance(p, OpenPart):
                p.close()
        wall = time.time() - wall0
        cpu = time.process_time() - cpu0
        return {"port": self.port, "seconds": self.seconds, "wall_seconds": round(wall, 2),
                "generator_cpu_seconds": round(cpu, 2), "generator_cpu_share": round(cpu / wall, 3),
                "parts": {p.name: p.result(t0, t_end) for p in self.parts}}


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    spec = json.load(sys.stdin if sys.argv[1] == "-" else open(sys.argv[1]))
    need = 64 + sum(p.get("clients", 0) for p in spec["parts"]) * 2
    got = raise_nofile(max(need, 4096))
    if got < need:
        log(f"loadgen: RLIMIT_NOFILE is {got}, {need} wanted; expect EMFILE errors")
    out = asyncio.run(Generator(spec).run())
    for name, r in out["parts"].items():
        if r.get("behind") and not spec.get("quiet"):
            log(f"loadgen: WARNING part {name}: the generator fell behind its schedule: {'; '.join(r['behind'])}")
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
