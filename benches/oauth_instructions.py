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

import base64
import http.client
import json
import os
import subprocess
import sys
import urllib.parse

import callgrind

ROOT = callgrind.ROOT
BIN = sys.argv[1] if len(sys.argv) > 1 else callgrind.DEFAULT_BIN
NODE = os.environ.get("PORT_MCP_TEST_NODE", "node")
SHORT, LONG = 300, 1300


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
    args = ["--stateless"] if stateless else []
    if oauth:
        args += ["--oauth-issuer", issuer, "--public-url", resource]
    server = callgrind.Server(BIN, args, {})
    conn = server.connect()
    headers = {**callgrind.HEADERS, "authorization": f"Bearer {bearer}"}
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
    callgrind.get_integration_calls(conn, calls, headers)
    conn.close()
    return server.stop()


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
