"""The release server under `valgrind --tool=callgrind`, for the scripts that count instructions
per call (oauth_instructions.py, telemetry_instructions.py): start it (`http --sandbox`) and wait
until it answers, send it sequential `tools/call get-integration`, stop it and read the total.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_BIN = os.path.join(ROOT, "target/release/port-integrations-mcp")
HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream",
           "mcp-protocol-version": "2025-06-18"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`BIN http --sandbox --listen 127.0.0.1:PORT ARGS...` under callgrind, answering."""

    def __init__(self, binary, args, env):
        self.port = free_port()
        self.out = tempfile.NamedTemporaryFile(prefix="callgrind.", delete=False).name
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={self.out}", binary,
                   "http", "--sandbox", "--listen", f"127.0.0.1:{self.port}", *args]
        env = {"PATH": os.environ.get("PATH", ""), "PORT_MCP_LOG": "error", **env}
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 120
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                raise SystemExit("server did not start")
            time.sleep(0.2)

    def connect(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def stop(self):
        """Ends the server (SIGTERM) and returns the instructions it ran in all."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=120)
        with open(self.out) as f:
            total = next(int(l.split()[1]) for l in f
                         if l.startswith("summary:") or l.startswith("totals:"))
        os.unlink(self.out)
        return total


def get_integration_calls(conn, calls, headers):
    """Sends `calls` sequential `tools/call get-integration`; any failure ends the script."""
    for i in range(calls):
        body = json.dumps({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {
            "name": "get-integration", "arguments": {"identifier": "github-ocean"}}})
        conn.request("POST", "/mcp", body, headers)
        answer = conn.getresponse()
        data = answer.read()
        if answer.status != 200 or b'"isError":true' in data:
            raise SystemExit(f"call {i} failed: {answer.status} {data[:200]!r}")
