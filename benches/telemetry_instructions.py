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

import http.server
import sys
import threading

import callgrind

BIN = sys.argv[1] if len(sys.argv) > 1 else callgrind.DEFAULT_BIN
SHORT, LONG = 300, 1300


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
    server = callgrind.Server(BIN, ["--stateless"], env_extra)
    conn = server.connect()
    callgrind.get_integration_calls(conn, calls, callgrind.HEADERS)
    if env_extra.get("PORT_MCP_METRICS") == "true":
        conn.request("GET", "/metrics")
        scrape = conn.getresponse().read()
        if b"mcp_server_operation_duration_seconds" not in scrape:
            raise SystemExit("metrics on, but /metrics has no operation histogram")
    conn.close()
    return server.stop()


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
