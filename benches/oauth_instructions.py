#!/usr/bin/env python3
"""What checking an OAuth access token costs per call, in instructions (callgrind): a count that
does not depend on what else the machine is doing, unlike the throughput rows of `cargo bench`.

    python3 benches/oauth_instructions.py [BINARY]     (default target/release/port-integrations-mcp)

Runs the server (`http --sandbox`, fake Port in-process, stateless and stateful) under
`valgrind --tool=callgrind` four times per mode: without inbound auth and with `--oauth-issuer` (the test
authorization server, tests/oauth/issuer.mjs, on Node), each for a short and a long series of
sequential `tools/call get-integration`, every request carrying the same access token (which the
server without auth ignores). The difference between the long and the short series is the cost of
the extra calls alone (start-up, key fetch and the first, uncached check cancel out); divided by
the number of extra calls it is the instructions per call. Needs valgrind and Node.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import base64
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/release/port-integrations-mcp")
NODE = os.environ.get("PORT_MCP_TEST_NODE", "node")
SHORT, LONG = 300, 1300


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_issuer(resource):
    oauth = os.path.join(ROOT, "tests/oauth")
    if not os.path.isdir(os.path.join(oauth, "node_modules")):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=oauth, check=True,
                       stdout=subprocess.DEVNULL)
    proc = subprocess.Popen([NODE, os.path.join(oauth, "issuer.mjs"), "--resource", resource,
                             "--ttl", "3600"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    ready = json.loads(proc.stdout.readline())
    return proc, ready


def token(ready, resource):
    url = urllib.parse.urlparse(ready["token_endpoint"])
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    basic = base64.b64encode(f'{ready["client_id"]}:{ready["client_secret"]}'.encode()).decode()
    body = urllib.parse.urlencode({"grant_type": "client_credentials", "resource": resource,
                                   "scope": "port-integrations:read port-integrations:write"})
    conn.request("POST", url.path, body, {"authorization": f"Basic {basic}",
                                          "content-type": "application/x-www-form-urlencoded"})
    return json.loads(conn.getresponse().read())["access_token"]


def run(calls, oauth, issuer, resource, bearer, stateless=True):
    port = free_port()
    out = tempfile.NamedTemporaryFile(prefix="callgrind.", delete=False).name
    args = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", BIN, "http",
            "--sandbox", "--listen", f"127.0.0.1:{port}"]
    if stateless:
        args.append("--stateless")
    if oauth:
        args += ["--oauth-issuer", issuer, "--public-url", resource]
    env = {"PATH": os.environ.get("PATH", ""), "PORT_MCP_LOG": "error"}
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
               "mcp-protocol-version": "2025-06-18", "authorization": f"Bearer {bearer}"}
    if not stateless:
        init = json.dumps({"jsonrpc": "2.0", "id": "init", "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "callgrind", "version": "1"}}})
        conn.request("POST", "/mcp", init, headers)
        answer = conn.getresponse()
        answer.read()
        headers["mcp-session-id"] = answer.getheader("mcp-session-id")
        conn.request("POST", "/mcp", json.dumps({"jsonrpc": "2.0",
                     "method": "notifications/initialized"}), headers)
        conn.getresponse().read()
    for i in range(calls):
        body = json.dumps({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {
            "name": "get-integration", "arguments": {"identifier": "github-ocean"}}})
        conn.request("POST", "/mcp", body, headers)
        answer = conn.getresponse()
        data = answer.read()
        if answer.status != 200 or b'"isError":true' in data:
            raise SystemExit(f"call {i} failed: {answer.status} {data[:200]!r}")
    conn.close()
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=120)
    with open(out) as f:
        total = next(int(l.split()[1]) for l in f if l.startswith("summary:") or l.startswith("totals:"))
    os.unlink(out)
    return total


def main():
    resource = "http://127.0.0.1/bench-mcp"
    issuer_proc, ready = start_issuer(resource)
    try:
        bearer = token(ready, resource)
        for stateless in (True, False):
            per_call = {}
            for oauth in (False, True):
                short = run(SHORT, oauth, ready["issuer"], resource, bearer, stateless)
                long = run(LONG, oauth, ready["issuer"], resource, bearer, stateless)
                per_call[oauth] = (long - short) / (LONG - SHORT)
            plain, checked = per_call[False], per_call[True]
            mode = "stateless" if stateless else "stateful"
            print(f"instructions per tools/call get-integration ({mode} HTTP, {LONG - SHORT} "
                  f"calls): {plain:,.0f} without inbound auth, {checked:,.0f} with a JWT checked: "
                  f"{checked - plain:+,.0f} ({(checked / plain - 1) * 100:+.2f}%)")
    finally:
        issuer_proc.terminate()


if __name__ == "__main__":
    main()
