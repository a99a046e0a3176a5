#!/usr/bin/env python3
"""Release binary size, launch-to-first-tools/list over stdio, and idle memory.

Usage: python3 bench/startup_memory.py [path/to/release/binary]   (default target/release/port-integrations-mcp)

Loopback only; no Port account: tools/list never calls Port, and the idle measurements use the
built-in sandbox. Every figure is the median of repeated runs.
"""
import json, os, socket, statistics, subprocess, sys, time, urllib.request

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/port-integrations-mcp"
RUNS = 30
INIT = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}})
INITED = json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"})
LIST = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
ENV = {"PATH": os.environ.get("PATH", ""), "PORT_BASE_URL": "http://127.0.0.1:9", "PORT_MCP_LOG": "warn"}


def rss_kib(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            fields[k] = v.strip()
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def launch_to_tools_list():
    start = time.perf_counter()
    p = subprocess.Popen([BIN, "stdio"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, env=ENV)
    p.stdin.write(f"{INIT}\n{INITED}\n{LIST}\n".encode())
    p.stdin.flush()
    while True:
        line = p.stdout.readline()
        if not line:
            raise SystemExit("server closed stdout")
        if json.loads(line).get("id") == 2:
            break
    elapsed = time.perf_counter() - start
    rss = rss_kib(p.pid)
    p.stdin.close()
    p.wait(timeout=10)
    return elapsed, rss


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_idle():
    port = free_port()
    p = subprocess.Popen([BIN, "http", "--sandbox", "--listen", f"127.0.0.1:{port}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
                break
            except OSError:
                time.sleep(0.01)
        time.sleep(1.0)
        return rss_kib(p.pid)
    finally:
        p.terminate()
        p.wait(timeout=10)


def main():
    size = os.path.getsize(BIN)
    launch_to_tools_list()  # warm the page cache
    runs = [launch_to_tools_list() for _ in range(RUNS)]
    times = sorted(t for t, _ in runs)
    stdio_rss = statistics.median(r[0] for _, r in runs)
    http_rss, http_hwm = http_idle()
    print(f"binary                      {BIN}")
    print(f"release binary size         {size} bytes ({size / 2**20:.2f} MiB)")
    print(f"launch -> tools/list (stdio) median {statistics.median(times) * 1000:.1f} ms, "
          f"p90 {times[int(len(times) * 0.9) - 1] * 1000:.1f} ms, min {times[0] * 1000:.1f} ms ({RUNS} runs)")
    print(f"idle RSS, stdio after tools/list   {stdio_rss / 1024:.2f} MiB")
    print(f"idle RSS, http --sandbox after 1 s {http_rss / 1024:.2f} MiB (peak {http_hwm / 1024:.2f} MiB)")


if __name__ == "__main__":
    main()
