#!/usr/bin/env python3
"""Floods a `dcsend signal` on loopback the way issue 14 attacked it, and prints figures.

    cargo build --release
    python3 benches/signal_flood.py [target/release/dcsend]

The server runs under `prlimit --nofile=1024:1024` (the common limit, hard as well, so raising
the soft limit at start gains nothing). Every client picks a source address in 127.0.0.0/8, so
one process plays many hosts. Phases, each against a fresh server with default flags:

1. rooms: 1,350 `POST /ROOM` from 54 addresses 127.0.0.2-55 (25 each), then one from
   127.0.1.1; then how long until the flood's rooms (nobody spoke in them) are gone.
2. idle: 2,000 idle connections from 20 addresses of 127.0.5.0/24, then 10 `/healthz` from
   127.0.1.1 (latency), then how long after its connect the server closed each of them; the
   same from 20 networks (127.0.10-29.1, 100 connections each), which together reach the
   total connection limit.
3. slowloris: 50 connections from 127.0.6.0/24 writing one header byte per second; how long
   until the server closed each.
Linux only (127/8 routed to lo). Needs python3 and util-linux's prlimit.
"""

import re
import resource
import selectors
import socket
import subprocess
import sys
import threading
import time

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/dcsend"


def start_server():
    p = subprocess.Popen(
        ["prlimit", "--nofile=1024:1024", BIN, "signal", "--listen", "127.0.0.1:0"],
        stderr=subprocess.PIPE, text=True)
    for line in p.stderr:
        m = re.match(r"listening on http://(.*):(\d+)", line)
        if m:
            threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
            return p, (m.group(1), int(m.group(2)))
    raise SystemExit("the server did not start")


def connect(src, addr):
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(10)
    s.connect(addr)
    return s


def request(src, addr, raw):
    try:
        s = connect(src, addr)
        s.sendall(raw)
        reply = b""
        while chunk := s.recv(4096):
            reply += chunk
        s.close()
        return int(reply[9:12]) if reply.startswith(b"HTTP/1.1 ") else 0
    except OSError:
        return 0


def post(src, addr, room):
    return request(src, addr, f"POST /{room} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                   "Content-Length: 0\r\n\r\n".encode())


def healthz(src, addr):
    t = time.monotonic()
    status = request(src, addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    return status, time.monotonic() - t


def wait_closed(socks, opened, limit):
    """Seconds from its connect until each socket was closed by the server (None: still open
    `limit` seconds from now). Watches all of them at once."""
    out, turned_away = [None] * len(socks), set()
    sel = selectors.DefaultSelector()
    for i, s in enumerate(socks):
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, i)
    deadline = time.monotonic() + limit
    while sel.get_map() and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=deadline - time.monotonic()):
            try:
                data = key.fileobj.recv(4096)
                if data:
                    if data.startswith((b"HTTP/1.1 429", b"HTTP/1.1 503")):
                        turned_away.add(key.data)
                    continue
            except BlockingIOError:
                continue
            except OSError:
                pass
            out[key.data] = time.monotonic() - opened[key.data]
            sel.unregister(key.fileobj)
    return out, turned_away


def rooms():
    p, addr = start_server()
    t = time.monotonic()
    codes = [post(f"127.0.0.{h}", addr, f"r{h}x{k}") for h in range(2, 56) for k in range(25)]
    took = time.monotonic() - t
    print(f"rooms: {len(codes)} POSTs in {took:.2f} s: {codes.count(201)} rooms opened, "
          f"{codes.count(429)} x 429, {codes.count(503)} x 503")
    print(f"rooms: a client of 127.0.1.0/24 then gets {post('127.0.1.1', addr, 'newcomer')}")
    t = time.monotonic()
    while post("127.0.0.2", addr, f"again{int(time.monotonic() * 1000)}") != 201:
        time.sleep(0.1)
    print(f"rooms: the flood's network may open a room again after {time.monotonic() - t:.1f} s")
    p.terminate()
    p.wait()


def idle(what, source):
    p, addr = start_server()
    socks, opened, failed = [], [], 0
    t = time.monotonic()
    for i in range(2000):
        try:
            socks.append(connect(source(i), addr))
            opened.append(time.monotonic())
        except OSError:
            failed += 1
    print(f"{what}: 2000 connections in {time.monotonic() - t:.2f} s ({failed} failed to connect)")
    lat = [healthz("127.0.1.1", addr) for _ in range(10)]
    ok = [d for s, d in lat if s == 200]
    print(f"{what}: /healthz during the flood: {len(ok)}/10 answered 200, "
          f"max {max(ok) * 1000 if ok else float('nan'):.1f} ms")
    closed, turned_away = wait_closed(socks, opened, 60)
    done = [c for c in closed if c is not None]
    held = [c for i, c in enumerate(closed) if c is not None and i not in turned_away]
    print(f"{what}: the server closed {len(done)}/{len(socks)}: {len(turned_away)} turned away "
          f"with 429/503, {len(held)} served and closed {min(held) if held else 0:.1f}-"
          f"{max(held) if held else 0:.1f} s after their connect")
    p.terminate()
    p.wait()


def slowloris():
    p, addr = start_server()
    results = [None] * 50

    def loris(i):
        s = connect(f"127.0.6.{i + 1}", addr)
        start = time.monotonic()
        data = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"z" * 100
        s.settimeout(1)
        for b in data:
            try:
                s.send(bytes([b]))
                if s.recv(4096) == b"":
                    results[i] = time.monotonic() - start
                    return
            except socket.timeout:
                continue
            except OSError:
                results[i] = time.monotonic() - start
                return

    threads = [threading.Thread(target=loris, args=(i,)) for i in range(50)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    done = [r for r in results if r is not None]
    print(f"slowloris: {len(done)}/50 closed by the server, after {min(done):.1f}-"
          f"{max(done):.1f} s" if done else "slowloris: none closed")
    p.terminate()
    p.wait()


if __name__ == "__main__":
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # this process holds 2,000 sockets
    rooms()
    idle("idle, one network", lambda i: f"127.0.5.{1 + i % 20}")
    idle("idle, 20 networks", lambda i: f"127.0.{10 + i % 20}.1")
    slowloris()
