// Shared by check.mjs and bundle-check.mjs: runs the pinned MCP Inspector CLI (a real MCP
// client, independent of this repository's Rust and Python clients), starts servers, and holds
// what the sandbox organization must answer to each read tool.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const INSPECTOR = join(here, "node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js");
const CALL_TIMEOUT_MS = 60_000; // one inspector run: start, initialize, one request, exit
const START_TIMEOUT_MS = 30_000; // an HTTP server's /healthz answering 200

// The 13 tools with every toolset on, and the 7 of the default `integrations` toolset.
export const ALL_TOOLS = [
  "delete-integration",
  "get-all-integrations",
  "get-all-integrations-meta-data",
  "get-integration",
  "get-integration-kind-examples",
  "get-integration-s-event-logs",
  "get-integration-sync-history",
  "get-integration-sync-status",
  "preview-integration-mapping",
  "restore-integration-mapping",
  "resync-integration",
  "update-integration",
  "update-integration-s-config",
];
export const DEFAULT_TOOLS = [
  "delete-integration",
  "get-all-integrations",
  "get-all-integrations-meta-data",
  "get-integration",
  "get-integration-s-event-logs",
  "update-integration",
  "update-integration-s-config",
];

const SANDBOX_IDS = ["github-ocean", "pagerduty-prod", "k8s-exporter-eu", "jira-cloud"];
const FAILED_RUN = "a41c7e92-8b3d-4f25-b6e0-7d9f1c2a3b48";

// Each read tool: the arguments sent, and what the result must hold (sandbox data, see
// src/sandbox/seed.rs). `check` returns "" when the structured result is right, else what is wrong.
export const READ_CALLS = [
  {
    tool: "get-all-integrations",
    passthrough: true, // Port's body, byte for byte, as text
    args: {},
    port: true,
    check: (sc) => same(sc?.integrations?.map((i) => i.identifier), SANDBOX_IDS, "integrations[].identifier"),
  },
  {
    tool: "get-all-integrations-meta-data",
    passthrough: true, // Port's body, byte for byte, as text
    args: {},
    port: true,
    check: (sc) =>
      same(sc?.integrations?.map((i) => `${i.identifier}:${i.integrationType}`), [
        "github-ocean:github-ocean",
        "pagerduty-prod:pagerduty",
        "k8s-exporter-eu:kubernetes",
        "jira-cloud:jira",
      ], "integrations[].identifier:integrationType"),
  },
  {
    tool: "get-integration",
    passthrough: true, // Port's body, byte for byte, as text
    args: { identifier: "jira-cloud" },
    port: true,
    check: (sc) =>
      same(sc?.integration?.identifier, "jira-cloud", "integration.identifier") ||
      same(sc?.integration?._id, "integration_3b9d7c42", "integration._id") ||
      same(sc?.integration?.config?.resources?.map((r) => r.kind), ["project", "issue"], "config.resources[].kind"),
  },
  {
    tool: "get-integration-s-event-logs",
    passthrough: true, // Port's body, byte for byte, as text
    args: { identifier: "jira-cloud", levels: ["ERROR"], limit: 2 },
    port: true,
    check: (sc) =>
      same(sc?.data?.logs?.map((l) => `${l._id}:${l.level}`), ["log_jira_020:ERROR", "log_jira_014:ERROR"], "data.logs[]._id:level"),
  },
  {
    tool: "get-integration-kind-examples",
    args: { identifier: "jira-cloud", kind: "issue" },
    port: true,
    check: (sc) => same(sc?.identifier, "jira-cloud", "identifier") || same(sc?.items?.[0]?.key, "PAY-101", "items[0].key"),
  },
  {
    tool: "get-integration-sync-history",
    args: { identifier: "jira-cloud" },
    port: true,
    check: (sc) =>
      same(sc?.runs?.map((r) => `${r.resyncId}:${r.state}`), [
        `${FAILED_RUN}:failed`,
        "5d2f8a61-3c4e-4b7a-9f10-2e6b8c9d0a13:completed",
      ], "runs[].resyncId:state"),
  },
  {
    tool: "get-integration-sync-status",
    args: { identifier: "jira-cloud" },
    port: true,
    check: (sc) =>
      same(sc?.kinds?.map((k) => `${k.kind}:loaded=${k.loaded}:failed=${k.failed}`), [
        "project:loaded=2:failed=0",
        "issue:loaded=0:failed=4",
        "__reconciliation__:loaded=0:failed=0",
        "__runtime__:loaded=0:failed=0",
      ], "kinds[].kind:loaded:failed"),
  },
  {
    tool: "preview-integration-mapping",
    args: {
      config: {
        resources: [
          {
            kind: "issue",
            selector: { query: "true" },
            port: { entity: { mappings: { identifier: ".key", title: ".fields.summary", blueprint: '"jiraIssue"' } } },
          },
        ],
      },
      items: [{ key: "PAY-1", fields: { summary: "Card captures time out" } }],
    },
    port: false, // runs jq locally: Port is not called
    check: (sc) =>
      same(sc?.results?.[0]?.entities?.[0], {
        blueprint: "jiraIssue",
        identifier: "PAY-1",
        properties: {},
        relations: {},
        title: "Card captures time out",
      }, "results[0].entities[0]"),
  },
];
export const READ_TOOLS = READ_CALLS.map((c) => c.tool).sort();

function same(got, want, what) {
  return isDeepStrictEqual(got, want) ? "" : `${what} is ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`;
}

/// A scratch folder (HOME for the inspector, config files), removed by `cleanup`.
export function scratch(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/// The environment the inspector (and a stdio server it starts) gets: nothing from ours, so no
/// PORT_* variable of the machine leaks into a server under test.
export function cleanEnv(home) {
  return { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home, MCP_INSPECTOR_SECRET_STORE: "memory", NO_COLOR: "1" };
}

/// Writes an `mcpServers` config file (mode 0600: it may hold a secret) naming one server.
export function writeConfig(dir, name, entry) {
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify({ mcpServers: { [name]: entry } }, null, 2), { mode: 0o600 });
  return file;
}

/// One inspector run. `target` is ["--config", file, "--server", name] or [url, "--transport", "http"].
/// Returns { status, stdout, stderr, json } (json: the parsed stdout, or undefined).
export function inspect(target, methodArgs, env) {
  const r = spawnSync(process.execPath, [INSPECTOR, "--cli", ...target, ...methodArgs], {
    encoding: "utf8",
    env,
    timeout: CALL_TIMEOUT_MS,
    killSignal: "SIGKILL",
    maxBuffer: 64 * 1024 * 1024,
  });
  let json;
  try {
    json = JSON.parse(r.stdout);
  } catch {
    json = undefined;
  }
  const status = r.error ? `${r.error.code ?? r.error.message}` : r.status;
  return { status, stdout: r.stdout ?? "", stderr: r.stderr ?? "", json };
}

/// `--tool-arg key=value` pairs; values are JSON so arrays and objects arrive typed.
export function toolArgs(args) {
  const pairs = Object.entries(args).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`);
  return pairs.length ? ["--tool-arg", ...pairs] : [];
}

/// Checks one tools/call answer: exit 0, a JSON result, not isError, text content (for tools
/// that pass Port's body through: that body, equal to the structured content), and the tool's
/// own expectations. Returns "" or the problem.
export function callProblem(call, r) {
  if (r.json === undefined) return `inspector exit ${r.status}, no result: ${inspectorError(r)}`;
  if (r.json.isError) return `isError: ${r.json.content?.[0]?.text?.slice(0, 300)}`;
  if (r.status !== 0) return `inspector exit ${r.status}: ${inspectorError(r)}`;
  const text = r.json.content?.find((c) => c.type === "text")?.text;
  if (typeof text !== "string" || text.length === 0) return "no text content";
  if (call.passthrough) {
    let parsed;
    try {
      parsed = JSON.parse(text);
    } catch {
      return `text content is not Port's JSON body: ${text.slice(0, 200)}`;
    }
    if (!isDeepStrictEqual(parsed, r.json.structuredContent)) return "text content and structuredContent differ";
  }
  return call.check(r.json.structuredContent);
}

/// The inspector's own error (a `{"error": ...}` line on stderr, among the server's log lines
/// it passes through), else the last lines of its output.
function inspectorError(r) {
  const lines = `${r.stdout}\n${r.stderr}`.split("\n").map((l) => l.trim()).filter(Boolean);
  const error = lines.filter((l) => l.startsWith('{"error"')).pop();
  return (error ?? lines.slice(-3).join(" | ")).slice(0, 400);
}

/// Compares a tools/list answer with the expected names. Returns "" or what differs.
export function listProblem(r, want) {
  if (r.json === undefined || !Array.isArray(r.json.tools)) return `inspector exit ${r.status}, no tool list: ${inspectorError(r)}`;
  if (r.status !== 0) return `inspector exit ${r.status}: ${inspectorError(r)}`;
  const names = r.json.tools.map((t) => t.name);
  const missing = want.filter((n) => !names.includes(n));
  const extra = names.filter((n) => !want.includes(n));
  if (missing.length || extra.length) {
    return [missing.length ? `missing ${missing.join(", ")}` : "", extra.length ? `unexpected ${extra.join(", ")}` : ""].filter(Boolean).join("; ");
  }
  return "";
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/// Whether `url` answers `status` (any HTTP answer when `status` is undefined).
async function answers(url, status) {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return status === undefined || r.status === status;
  } catch {
    return false;
  }
}

/// Starts `command args` (an HTTP server listening on `port`) and waits until `readyPath` answers
/// (200 for /healthz; any answer for other paths). Returns { child, log(), stop() }; throws with
/// the server's output when it does not come up.
export async function startHttp(command, args, env, port, readyPath = "/healthz") {
  const child = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d) => (out = (out + d).slice(-20_000)));
  child.stderr.on("data", (d) => (out = (out + d).slice(-20_000)));
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve(`exited (${code ?? signal})`)));
  const deadline = Date.now() + START_TIMEOUT_MS;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(t);
    }
  };
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) break;
    if (await answers(`http://127.0.0.1:${port}${readyPath}`, readyPath === "/healthz" ? 200 : undefined)) {
      return { child, log: () => out, stop };
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  await stop();
  throw new Error(`${command} ${args.join(" ")} did not answer ${readyPath} on port ${port} within ${START_TIMEOUT_MS / 1000} s; its output:\n${out}`);
}

/** A check's PASS/FAIL lines and its closing count: `report` returns whether it passed;
 *  `finish` prints `name: N passed, M failed` and exits 0 only when none failed. */
export function tally(name) {
  let passed = 0;
  let failed = 0;
  return {
    report(label, problem) {
      if (problem) failed++;
      else passed++;
      console.log(`${problem ? "FAIL" : "PASS"}  ${label}${problem ? `: ${problem}` : ""}`);
      return !problem;
    },
    finish() {
      console.log(`${name}: ${passed} passed, ${failed} failed`);
      process.exit(failed === 0 ? 0 : 1);
    },
  };
}
