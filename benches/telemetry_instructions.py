#!/usr/bin/env python3
"""What metrics and traces cost per call, in instructions (callgrind): a count that does not depend
on what else the machine is doing, unlike the throughput rows of `cargo bench`.

    python3 benches/telemetry_instructions.py [BINARY]   (default target/release/port-integrations-mcp)

Runs the server (`http --sandbox --stateless`, fake Port in-process) under
`valgrind --tool=callgrind` twice per setting: with all telemetry off, with Prometheus metrics on
(scraped once at the end, so the families are really built), and with every call traced (100%
sampling) to an OTLP/HTTP receiver in this script; each for a short and a long series of
sequential `tools/call get-integration`. The difference between the long and the short series is
the cost of the extra calls alone (start-up and first-call work cancel out); divided by the number
of extra calls it is the instructions per call, the exporter's thread included. Needs valgrind.
"""

import http.client
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/release/port-integrations-mcp")
SHORT, LONG = 300, 1300


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver(http.server.BaseHTTPRequestHandler):
    """Accepts every OTLP export with an empty (valid) ExportTraceServiceResponse."""
    exports = 0

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", "0")))
        Receiver.exports += 1
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def run(calls, env_extra):
    port = free_port()
    out = tempfile.NamedTemporaryFile(prefix="callgrind.", delete=False).name
    args = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", BIN, "http",
            "--sandbox", "--stateless", "--listen", f"127.0.0.1:{port}"]
    env = {"PATH": os.environ.get("PATH", ""), "PORT_MCP_LOG": "error", **env_extra}
    server = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
    deadline = time.time() + 120
    while True:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                break
        except OSError:
            pass
        if time.time() > deadline:
            raise SystemExit("server did not start")
        time.sleep(0.2)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream",
               "mcp-protocol-version": "2025-06-18"}
    for i in range(calls):
        body = json.dumps({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {
            "name": "get-integration", "arguments": {"identifier": "github-ocean"}}})
        conn.request("POST", "/mcp", body, headers)
        answer = conn.getresponse()
        data = answer.read()
        if answer.status != 200 or b'"isError":true' in data:
            raise SystemExit(f"call {i} failed: {answer.status} {data[:200]!r}")
    if env_extra.get("PORT_MCP_METRICS") == "true":
        conn.request("GET", "/metrics")
        scrape = conn.getresponse().read()
        if b"mcp_server_operation_duration_seconds" not in scrape:
            raise SystemExit("metrics on, but /metrics has no operation histogram")
    conn.close()
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=120)
    with open(out) as f:
        total = next(int(l.split()[1]) for l in f if l.startswith("summary:") or l.startswith("totals:"))
    os.unlink(out)
    return total


def main():
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    collector = f"http://127.0.0.1:{receiver.server_address[1]}"
    settings = {
        "off": {"PORT_MCP_METRICS": "false"},
        "metrics on": {"PORT_MCP_METRICS": "true"},
        "traced (100%)": {"PORT_MCP_METRICS": "false", "OTEL_EXPORTER_OTLP_ENDPOINT": collector,
                          "OTEL_TRACES_SAMPLER": "always_on"},
    }
    per_call = {}
    for name, env in settings.items():
        short = run(SHORT, env)
        long = run(LONG, env)
        per_call[name] = (long - short) / (LONG - SHORT)
    base = per_call["off"]
    print(f"instructions per tools/call get-integration (stateless HTTP, {LONG - SHORT} calls): "
          + "; ".join(f"{name} {n:,.0f} ({(n / base - 1) * 100:+.2f}%)" for name, n in per_call.items())
          + f"; {Receiver.exports} OTLP exports received")
    receiver.shutdown()


if __name__ == "__main__":
    main()
