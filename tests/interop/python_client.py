#!/usr/bin/env python3
"""Independent interop check of port-integrations-mcp with the official Python MCP SDK.

Usage: python tests/interop/python_client.py path/to/port-integrations-mcp

Uses `mcp==2.3.0` (tests/interop/requirements.txt), a client written by other people than
this server's rmcp, so wire-format disagreements show up here and not in a host.

Cases: protocol mode {legacy: initialize at 2025-11-25, auto: server/discover at 2026-07-28}
x transport {stdio, http (stateful sessions), http --stateless}. Every case starts a fresh
server process on the built-in sandbox Port organization (`--sandbox`: nothing leaves the
machine; the HTTP server listens on a free 127.0.0.1 port), lists the tools, calls all seven
tools and checks the error paths. Three more cases turn on every toolset and run the whole
troubleshooting loop on the sandbox's failing integration (jira-cloud): prompts and resources,
sync status, ERROR logs, kind examples, a preview of the fix, the checked config update,
resync-integration to `completed` with per-kind counts, and the history. (The Python SDK has
no MCP tasks, so the resync runs as a plain call here; the Rust tests cover tasks.) One more
runs the seven tools behind `--oauth-issuer`: a token-less request gets the 401 challenge whose
metadata URL names the issuer, then the SDK's client works with an access token from the test
authorization server (tests/oauth/issuer.mjs on the Node of PORT_MCP_TEST_NODE, else `node`).
Port credentials in the caller's environment are never passed on. One line per case, then `N passed, M failed`; the exit status is 1 when M > 0.
Everything is bounded by timeouts: the whole run stops itself after TOTAL_BUDGET_S.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

TOTAL_BUDGET_S = 200  # the whole script, hard stop
CASE_BUDGET_S = 25  # one case: start the server, connect, all calls, shut down
LOOP_BUDGET_S = 45  # one troubleshooting-loop case (two resyncs of ~3 s each in the sandbox)
REQUEST_TIMEOUT_S = 10  # one MCP request
HEALTH_WAIT_S = 10  # HTTP server start-up until /healthz answers 200

LEGACY_VERSION = "2025-11-25"
MODERN_VERSION = "2026-07-28"

READ_ID = "github-ocean"
DELETE_ID = "k8s-exporter-eu"
MISSING_ID = "does-not-exist"

# name -> expected annotations (see check_annotations for what each flag asserts).
EXPECTED_TOOLS: dict[str, dict[str, bool]] = {
    "get-all-integrations": {"read_only_hint": True},
    "get-all-integrations-meta-data": {"read_only_hint": True},
    "get-integration": {"read_only_hint": True},
    "get-integration-s-event-logs": {"read_only_hint": True},
    "update-integration": {"read_only_hint": False, "destructive_hint": False},
    "update-integration-s-config": {"read_only_hint": False, "destructive_hint": False},
    "delete-integration": {"read_only_hint": False, "destructive_hint": True},
}

# The sync toolset's tools, and what the loop cases check of their annotations.
SYNC_TOOLS: dict[str, dict[str, bool]] = {
    "get-integration-sync-status": {"read_only_hint": True},
    "get-integration-sync-history": {"read_only_hint": True},
    "get-integration-kind-examples": {"read_only_hint": True},
    "resync-integration": {"read_only_hint": False, "destructive_hint": False},
    "restore-integration-mapping": {"read_only_hint": False, "destructive_hint": False},
}
LOOP_ID = "jira-cloud"  # the sandbox's integration whose last resync failed on a broken mapping
FAILED_RUN = "a41c7e92-8b3d-4f25-b6e0-7d9f1c2a3b48"

# Child processes this script started, so a watchdog can end exactly those.
_children: list[subprocess.Popen[bytes]] = []


@dataclass
class Case:
    mode: str  # "legacy" | "auto"
    transport: str  # "stdio" | "http" | "http-stateless"
    loop: bool = False  # the troubleshooting loop (sync toolset) instead of the seven tools
    oauth: bool = False  # behind --oauth-issuer, with a token from the test authorization server

    @property
    def name(self) -> str:
        return f"{self.mode}/{self.transport}" + (" loop" if self.loop else "") + (" oauth" if self.oauth else "")

    @property
    def env(self) -> dict[str, str]:
        return {"PORT_TOOLSETS": "integrations,mapping,sync"} if self.loop else {}

    @property
    def expected_version(self) -> str:
        return LEGACY_VERSION if self.mode == "legacy" else MODERN_VERSION


@dataclass
class Outcome:
    checks: int = 0
    failures: list[str] = field(default_factory=list)
    protocol: str = "?"
    server_log: str = ""

    def check(self, ok: bool, what: str, detail: str = "") -> bool:
        self.checks += 1
        if not ok:
            self.failures.append(f"{what}: {detail}" if detail else what)
        return ok


# --------------------------------------------------------------------------------------------
# Helpers


def clean_env() -> dict[str, str]:
    """The caller's environment without any PORT_* setting (credentials, base URL, listen...)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORT_")}
    env["PORT_MCP_LOG"] = "info"
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def text_of(result: Any) -> str:
    parts = []
    for block in result.content or []:
        t = getattr(block, "text", None)
        if t is not None:
            parts.append(t)
    return "\n".join(parts)


def short(value: Any, limit: int = 300) -> str:
    s = value if isinstance(value, str) else json.dumps(value, default=str)
    return s if len(s) <= limit else s[:limit] + "..."


def describe(exc: BaseException) -> str:
    if isinstance(exc, MCPError):
        return f"MCPError {exc.code}: {exc.message}"
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe(e) for e in exc.exceptions)
    text = str(exc) or repr(exc)
    return f"{type(exc).__name__}: {text}"


def tail(path: str, lines: int = 15) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def wait_healthy(proc: subprocess.Popen[bytes], url: str, deadline_s: float) -> str | None:
    """Polls GET url until 200. Returns None when healthy, else why not."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only, never a proxy
    end = time.monotonic() + deadline_s
    last = "no answer"
    while time.monotonic() < end:
        if proc.poll() is not None:
            return f"server exited with status {proc.returncode} before {url} answered"
        try:
            with opener.open(url, timeout=2) as resp:
                if resp.status == 200:
                    return None
                last = f"HTTP {resp.status}"
        except urllib.error.HTTPError as e:
            last = f"HTTP {e.code}"
        except (urllib.error.URLError, OSError) as e:
            last = str(e)
        time.sleep(0.1)
    return f"{url} not healthy within {deadline_s:.0f} s (last: {last})"


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    if proc in _children:
        _children.remove(proc)


# --------------------------------------------------------------------------------------------
# The checks, the same for every case


def check_annotations(out: Outcome, tools: list[Any]) -> None:
    names = sorted(t.name for t in tools)
    out.check(
        names == sorted(EXPECTED_TOOLS),
        "tools/list names",
        f"expected {sorted(EXPECTED_TOOLS)}, got {names}",
    )
    for tool in tools:
        expected = EXPECTED_TOOLS.get(tool.name)
        if expected is None:
            continue
        a = tool.annotations
        if not out.check(a is not None, f"{tool.name} annotations", "missing"):
            continue
        got = {
            "readOnlyHint": a.read_only_hint,
            "destructiveHint": a.destructive_hint,
            "idempotentHint": a.idempotent_hint,
            "openWorldHint": a.open_world_hint,
        }
        problems = []
        if expected["read_only_hint"]:
            if a.read_only_hint is not True:
                problems.append("readOnlyHint should be true")
            if a.destructive_hint is True:
                problems.append("destructiveHint should not be true")
        else:
            if a.read_only_hint:
                problems.append("readOnlyHint should be false")
            # Explicit, since an absent destructiveHint means true in the MCP spec.
            if a.destructive_hint is not expected["destructive_hint"]:
                problems.append(f"destructiveHint should be {str(expected['destructive_hint']).lower()}")
        if a.idempotent_hint is not True:
            problems.append("idempotentHint should be true")
        if a.open_world_hint is not True:
            problems.append("openWorldHint should be true")
        out.check(not problems, f"{tool.name} annotations", f"{'; '.join(problems)} (got {got})")


async def call_ok(out: Outcome, client: Client, tool: str, args: dict[str, Any]) -> dict[str, Any] | None:
    """Calls a tool that must succeed; returns structuredContent when it did."""
    label = f"{tool} {short(args, 120)}"
    try:
        result = await client.call_tool(tool, args)
    except Exception as e:  # noqa: BLE001 - any raise is the finding
        out.check(False, label, f"raised {describe(e)}")
        return None
    if not out.check(not result.is_error, label, f"isError true: {short(text_of(result))}"):
        return None
    sc = result.structured_content
    if not out.check(
        isinstance(sc, dict) and sc.get("ok") is True,
        label,
        f"structuredContent.ok is not true: {short(sc)}",
    ):
        return None
    try:
        as_text = json.loads(text_of(result))
    except ValueError:
        as_text = None
    out.check(as_text == sc, f"{label} text", "content text is not the same JSON as structuredContent")
    return sc


async def call_tool_error(out: Outcome, client: Client, tool: str, args: dict[str, Any], must_mention: list[str]) -> None:
    """Calls a tool that must fail as a tool result (isError: true) whose text names must_mention."""
    label = f"{tool} {short(args, 120)}"
    try:
        result = await client.call_tool(tool, args)
    except Exception as e:  # noqa: BLE001
        out.check(False, label, f"expected an isError result, raised {describe(e)}")
        return
    text = text_of(result)
    if not out.check(result.is_error, label, f"expected isError true, got a success: {short(text)}"):
        return
    missing = [m for m in must_mention if m.lower() not in text.lower()]
    out.check(not missing, label, f"error text does not mention {missing}: {short(text)}")


async def exercise(out: Outcome, client: Client, case: Case) -> None:
    out.protocol = client.protocol_version
    out.check(
        client.protocol_version == case.expected_version,
        "negotiated protocol version",
        f"expected {case.expected_version}, got {client.protocol_version}",
    )

    listed = await client.list_tools()
    check_annotations(out, listed.tools)

    sc = await call_ok(out, client, "get-all-integrations", {})
    if sc is not None:
        ids = [i.get("identifier") for i in sc.get("integrations", []) if isinstance(i, dict)]
        out.check(READ_ID in ids, "get-all-integrations lists the seed", f"{READ_ID} not in {ids}")

    await call_ok(out, client, "get-all-integrations-meta-data", {})

    sc = await call_ok(out, client, "get-integration", {"identifier": READ_ID})
    if sc is not None:
        got = (sc.get("integration") or {}).get("identifier")
        out.check(got == READ_ID, "get-integration identifier", f"integration.identifier is {got!r}")

    # No body: an empty PATCH (Port's older documented resync trigger; resync-integration is the reliable one).
    await call_ok(out, client, "update-integration", {"identifier": READ_ID})

    sc = await call_ok(out, client, "update-integration", {"identifier": READ_ID, "body": {"title": "GitHub (renamed)"}})
    if sc is not None:
        got = (sc.get("integration") or {}).get("title")
        out.check(got == "GitHub (renamed)", "update-integration title", f"integration.title is {got!r}")

    await call_ok(
        out,
        client,
        "update-integration-s-config",
        {"identifier": READ_ID, "body": {"config": {"deleteDependentEntities": False, "resources": []}}},
    )

    await call_ok(out, client, "get-integration-s-event-logs", {"identifier": READ_ID, "levels": ["ERROR"], "limit": 5})

    await call_tool_error(out, client, "get-integration", {"identifier": MISSING_ID}, ["404"])
    await call_tool_error(out, client, "get-integration-s-event-logs", {"identifier": READ_ID, "limit": 301}, ["limit"])

    try:
        result = await client.call_tool("no-such-tool", {})
        out.check(False, "unknown tool", f"expected a protocol error, got a result: isError={result.is_error} {short(text_of(result))}")
    except MCPError:
        out.check(True, "unknown tool")
    except Exception as e:  # noqa: BLE001
        out.check(False, "unknown tool", f"expected MCPError, raised {describe(e)}")

    # Last: it removes the integration from the sandbox.
    if await call_ok(out, client, "delete-integration", {"identifier": DELETE_ID}) is not None:
        await call_tool_error(out, client, "get-integration", {"identifier": DELETE_ID}, ["404"])


def kind_row(report: dict[str, Any], kind_identifier: str) -> dict[str, Any]:
    for row in report.get("kinds") or []:
        if isinstance(row, dict) and row.get("kindIdentifier") == kind_identifier:
            return row
    return {}


async def call_sc(out: Outcome, client: Client, tool: str, args: dict[str, Any]) -> dict[str, Any] | None:
    """Calls a tool that must succeed; returns its structuredContent (any shape of ours)."""
    label = f"{tool} {short(args, 120)}"
    try:
        result = await client.call_tool(tool, args)
    except Exception as e:  # noqa: BLE001
        out.check(False, label, f"raised {describe(e)}")
        return None
    if not out.check(not result.is_error, label, f"isError true: {short(text_of(result))}"):
        return None
    sc = result.structured_content
    if not out.check(isinstance(sc, dict), label, f"no structuredContent: {short(text_of(result))}"):
        return None
    return sc


async def exercise_loop(out: Outcome, client: Client, case: Case) -> None:
    """The troubleshooting loop on the sandbox's failing integration, as the prompt describes it."""
    out.protocol = client.protocol_version
    listed = await client.list_tools()
    names = {t.name for t in listed.tools}
    wanted = set(EXPECTED_TOOLS) | set(SYNC_TOOLS) | {"preview-integration-mapping"}
    out.check(names == wanted, "tools/list with every toolset", f"missing {sorted(wanted - names)}, extra {sorted(names - wanted)}")
    for tool in listed.tools:
        expected = SYNC_TOOLS.get(tool.name)
        if expected is None or tool.annotations is None:
            continue
        a = tool.annotations
        out.check(
            a.read_only_hint is expected["read_only_hint"]
            and (expected["read_only_hint"] or a.destructive_hint is expected["destructive_hint"]),
            f"{tool.name} annotations",
            f"got readOnly={a.read_only_hint} destructive={a.destructive_hint}",
        )

    # Prompts and resources of the guided workflow.
    prompts = await client.list_prompts()
    prompt_names = sorted(p.name for p in prompts.prompts)
    out.check(
        prompt_names == ["fix-integration-mapping", "troubleshoot-integration"],
        "prompts/list",
        f"got {prompt_names}",
    )
    rendered = await client.get_prompt("troubleshoot-integration", {"identifier": LOOP_ID})
    prompt_text = " ".join(getattr(m.content, "text", "") for m in rendered.messages)
    out.check(
        LOOP_ID in prompt_text and "get-integration-sync-status" in prompt_text and "resync-integration" in prompt_text,
        "prompts/get troubleshoot-integration",
        short(prompt_text),
    )
    templates = await client.list_resource_templates()
    uris = sorted(t.uri_template for t in templates.resource_templates)
    out.check(
        "port://integrations/{identifier}" in uris and "port://default-mappings/{type}" in uris,
        "resources/templates/list",
        f"got {uris}",
    )
    read = await client.read_resource(f"port://integrations/{LOOP_ID}")
    body = json.loads(getattr(read.contents[0], "text", "null") or "null")
    out.check(
        isinstance(body, dict) and (body.get("integration") or {}).get("identifier") == LOOP_ID,
        "resources/read port://integrations/jira-cloud",
        short(body),
    )
    default = await client.read_resource("port://default-mappings/jira")
    out.check("resources:" in (getattr(default.contents[0], "text", "") or ""), "resources/read default mapping", "no YAML resources")

    # 1. Status shows the failure.
    status = await call_sc(out, client, "get-integration-sync-status", {"identifier": LOOP_ID})
    if status is None:
        return
    issue = kind_row(status, "issue-1")
    out.check(
        status.get("resyncId") == FAILED_RUN and issue.get("state") == "failed" and issue.get("failed") == 4 and issue.get("loaded") == 0,
        "status shows the failed run",
        short(status),
    )
    # 2. The ERROR logs explain it.
    logs = await call_ok(out, client, "get-integration-s-event-logs", {"identifier": LOOP_ID, "levels": ["ERROR"], "event_id": FAILED_RUN})
    out.check(logs is not None and ".fields.key" in json.dumps(logs), "ERROR logs name the broken expression", short(logs))
    # 3. The examples show where the key is.
    examples = await call_sc(out, client, "get-integration-kind-examples", {"identifier": LOOP_ID, "kind": "issue"})
    items = (examples or {}).get("items") or []
    if not out.check(len(items) == 4, "kind examples", short(examples)):
        return
    keys = [i.get("key") for i in items]
    # 4. The preview proves the fix.
    got = await call_ok(out, client, "get-integration", {"identifier": LOOP_ID})
    if got is None:
        return
    config = got["integration"]["config"]
    config["resources"][1]["port"]["entity"]["mappings"]["identifier"] = ".key"
    preview = await call_sc(out, client, "preview-integration-mapping", {"config": config, "kind": "issue", "items": items})
    identifiers = [((r.get("entities") or [{}])[0]).get("identifier") for r in (preview or {}).get("results") or []]
    out.check(identifiers == keys, "preview of the fixed mapping", f"identifiers {identifiers}, keys {keys}")
    # 5. The update passes the jq check.
    await call_ok(out, client, "update-integration-s-config", {"identifier": LOOP_ID, "body": {"config": config}})
    # 6. resync-integration (POST /resync) ends completed with per-kind counts.
    report = await call_sc(out, client, "resync-integration", {"identifier": LOOP_ID, "timeoutSeconds": 30})
    if report is None:
        return
    issue = kind_row(report, "issue-1")
    out.check(
        report.get("status") == "completed" and issue.get("loaded") == 4 and issue.get("failed") == 0,
        "resync completes with per-kind counts",
        short(report),
    )
    # 7. History shows both runs.
    history = await call_sc(out, client, "get-integration-sync-history", {"identifier": LOOP_ID})
    runs = (history or {}).get("runs") or []
    ids = [r.get("resyncId") for r in runs]
    out.check(
        bool(runs) and runs[0].get("resyncId") == report.get("resyncId") and runs[0].get("state") == "completed" and FAILED_RUN in ids,
        "history shows both runs",
        short(runs),
    )


# --------------------------------------------------------------------------------------------
# Transports


async def run_stdio(case: Case, out: Outcome, logdir: str) -> None:
    log_path = os.path.join(logdir, f"{case.mode}-{case.transport}.log")
    with open(log_path, "w", encoding="utf-8") as errlog:
        params = StdioServerParameters(command=BIN, args=["stdio", "--sandbox"], env={"PORT_MCP_LOG": "info", **case.env})
        try:
            async with Client(
                stdio_client(params, errlog=errlog),
                mode=case.mode,
                read_timeout_seconds=REQUEST_TIMEOUT_S,
            ) as client:
                await (exercise_loop if case.loop else exercise)(out, client, case)
        finally:
            out.server_log = log_path


def start_issuer(resource: str) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """tests/oauth/issuer.mjs (oidc-provider), as the Rust tests run it; its one ready line."""
    oauth_dir = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "oauth")
    node = os.environ.get("PORT_MCP_TEST_NODE", "node")
    proc = subprocess.Popen(
        [node, os.path.join(oauth_dir, "issuer.mjs"), "--resource", resource],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    _children.append(proc)
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())


def issuer_token(ready: dict[str, Any], resource: str) -> str:
    """A client-credentials access token (RS256 JWT) for `resource` with both scopes."""
    import base64
    import urllib.parse

    body = urllib.parse.urlencode({
        "grant_type": "client_credentials", "resource": resource,
        "scope": "port-integrations:read port-integrations:write",
    }).encode()
    basic = base64.b64encode(f"{ready['client_id']}:{ready['client_secret']}".encode()).decode()
    request = urllib.request.Request(ready["token_endpoint"], data=body, headers={
        "authorization": f"Basic {basic}", "content-type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as answer:
        return json.load(answer)["access_token"]


async def run_http(case: Case, out: Outcome, logdir: str, stateless: bool) -> None:
    port = free_port()
    log_path = os.path.join(logdir, f"{case.mode}-{case.transport}{'-oauth' if case.oauth else ''}.log")
    out.server_log = log_path
    argv = [BIN, "http", "--sandbox", "--listen", f"127.0.0.1:{port}"] + (["--stateless"] if stateless else [])
    headers: dict[str, str] = {}
    issuer = None
    if case.oauth:
        resource = f"http://127.0.0.1:{port}/mcp"
        issuer, ready = await anyio.to_thread.run_sync(start_issuer, resource)
        argv += ["--oauth-issuer", ready["issuer"], "--public-url", resource]
        headers["authorization"] = f"Bearer {await anyio.to_thread.run_sync(issuer_token, ready, resource)}"
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env={**clean_env(), **case.env})
    _children.append(proc)
    try:
        why = await anyio.to_thread.run_sync(wait_healthy, proc, f"http://127.0.0.1:{port}/healthz", HEALTH_WAIT_S)
        if not out.check(why is None, "GET /healthz", why or ""):
            return
        timeout = httpx2.Timeout(REQUEST_TIMEOUT_S, read=REQUEST_TIMEOUT_S * 2)
        if case.oauth:
            # Without a token: the challenge that points a client at the metadata, and the metadata.
            async with httpx2.AsyncClient(timeout=timeout, trust_env=False) as bare:
                r = await bare.post(f"http://127.0.0.1:{port}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
                challenge = r.headers.get("www-authenticate", "")
                meta_url = f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp"
                out.check(r.status_code == 401 and f'resource_metadata="{meta_url}"' in challenge,
                          "401 challenge without a token", f"{r.status_code} {challenge!r}")
                meta = (await bare.get(meta_url)).json()
                out.check(meta.get("resource") == f"http://127.0.0.1:{port}/mcp"
                          and meta.get("authorization_servers") == [argv[argv.index("--oauth-issuer") + 1]],
                          "protected-resource metadata", short(meta))
        async with httpx2.AsyncClient(timeout=timeout, trust_env=False, headers=headers) as http:
            async with Client(
                streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http),
                mode=case.mode,
                read_timeout_seconds=REQUEST_TIMEOUT_S,
            ) as client:
                await (exercise_loop if case.loop else exercise)(out, client, case)
    finally:
        await anyio.to_thread.run_sync(stop, proc)
        if issuer is not None:
            await anyio.to_thread.run_sync(stop, issuer)


async def run_case(case: Case, logdir: str) -> Outcome:
    out = Outcome()
    try:
        with anyio.fail_after(LOOP_BUDGET_S if case.loop else CASE_BUDGET_S):
            if case.transport == "stdio":
                await run_stdio(case, out, logdir)
            else:
                await run_http(case, out, logdir, stateless=case.transport == "http-stateless")
    except TimeoutError:
        out.check(False, "case", f"did not finish within {LOOP_BUDGET_S if case.loop else CASE_BUDGET_S} s")
    except BaseException as e:  # noqa: BLE001 - report, do not crash the run
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        out.check(False, "case", f"aborted: {describe(e)}")
        if os.environ.get("INTEROP_DEBUG"):
            traceback.print_exc()
    return out


# --------------------------------------------------------------------------------------------

CASES = [Case(m, t) for m in ("legacy", "auto") for t in ("stdio", "http", "http-stateless")] + [
    Case("legacy", "stdio", loop=True),
    Case("auto", "http", loop=True),
    Case("legacy", "http-stateless", loop=True),
    Case("auto", "http", oauth=True),
]
BIN = ""
_results: list[bool] = []


def summary_and_exit(code_if_ok: int = 0) -> None:
    passed = sum(_results)
    failed = len(_results) - passed
    print(f"{passed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed else code_if_ok)


def on_watchdog(_signum: int, _frame: Any) -> None:
    for proc in list(_children):
        if proc.poll() is None:
            proc.kill()
    print(f"FAIL  watchdog: the run exceeded {TOTAL_BUDGET_S} s", flush=True)
    _results.extend([False] * (len(CASES) - len(_results)))
    passed = sum(_results)
    print(f"{passed} passed, {len(_results) - passed} failed", flush=True)
    os._exit(1)


async def main_async(logdir: str) -> None:
    for case in CASES:
        started = time.monotonic()
        out = await run_case(case, logdir)
        took = time.monotonic() - started
        ok = not out.failures
        _results.append(ok)
        status = "PASS" if ok else "FAIL"
        print(
            f"{status}  {case.name:<26} protocol {out.protocol:<10}  {out.checks:>2} checks  {took:5.1f} s",
            flush=True,
        )
        for f in out.failures:
            print(f"        - {f}", flush=True)
        if not ok and out.server_log:
            log = tail(out.server_log)
            if log:
                print("        server log (tail):", flush=True)
                for line in log.rstrip().splitlines():
                    print(f"          {line}", flush=True)


def main() -> None:
    global BIN
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        sys.exit(2)
    BIN = os.path.abspath(sys.argv[1])
    if not (os.path.isfile(BIN) and os.access(BIN, os.X_OK)):
        print(f"not an executable file: {BIN}", file=sys.stderr)
        print(f"0 passed, {len(CASES)} failed")
        sys.exit(1)
    # The SDK logs harmless warnings on shutdown (e.g. DELETE of a stateful session answered 202).
    logging.basicConfig(level=logging.ERROR)
    signal.signal(signal.SIGALRM, on_watchdog)
    signal.alarm(TOTAL_BUDGET_S)
    print(f"interop: {BIN} with mcp (Python SDK) {_sdk_version()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="port-mcp-interop-") as logdir:
        anyio.run(main_async, logdir)
    signal.alarm(0)
    summary_and_exit()


def _sdk_version() -> str:
    try:
        from importlib.metadata import version

        return version("mcp")
    except Exception:  # noqa: BLE001
        return "?"


if __name__ == "__main__":
    main()
