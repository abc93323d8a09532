"""Tiny TCP measurement ends for compare.sh (loopback and the test namespace only)."""
import socket, sys, time

def sink(host, port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, int(port))); s.listen(1)
    print("listening", flush=True)
    c, _ = s.accept(); t0 = time.perf_counter(); n = 0
    while True:
        b = c.recv(1 << 20)
        if not b: break
        n += len(b)
    dt = time.perf_counter() - t0
    print(f"{n / dt / 1e6:.1f} MB/s ({n} bytes in {dt:.2f} s)", flush=True)

def send(host, port, total):
    c = socket.create_connection((host, int(port)), timeout=60)
    chunk = b"\0" * (1 << 16); left = int(total)
    while left > 0:
        c.sendall(chunk[: min(left, len(chunk))]); left -= len(chunk)
    c.shutdown(socket.SHUT_WR); c.recv(1); c.close()

def echo(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(port))); s.listen(64)
    print("listening", flush=True)
    while True:
        c, _ = s.accept(); c.recv(1); c.sendall(b"x"); c.close()

def latency(host, port, count):
    times = []
    for _ in range(int(count)):
        t0 = time.perf_counter()
        c = socket.create_connection((host, int(port)), timeout=10); c.sendall(b"x"); c.recv(1); c.close()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    print(f"connect+1-byte round trip: median {times[len(times)//2]:.3f} ms, p90 {times[int(len(times)*0.9)]:.3f} ms over {len(times)}", flush=True)

{"sink": sink, "send": send, "echo": echo, "latency": latency}[sys.argv[1]](*sys.argv[2:])
