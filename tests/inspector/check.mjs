// The MCP Inspector CLI (`@modelcontextprotocol/inspector --cli`, pinned in package-lock.json)
// against the server in --sandbox, over stdio and over streamable HTTP:
//
//   node tests/inspector/check.mjs BINARY              the check CI runs
//   node tests/inspector/check.mjs BINARY --self-test  also proves the check can fail
//   node tests/inspector/check.mjs BINARY --server-args "--tools get-integration"   (by hand)
//
// Per transport: tools/list must name exactly the 13 tools of all toolsets (the default toolset
// exactly its 7), with the read tools marked readOnlyHint; tools/list --strict must find every
// input schema portable across hosts; then every read tool is called and its result checked:
// the inspector's exit code, no isError, Port's body as text where the tool passes it through,
// and the sandbox's known values.
// The self-test runs the same check against a server that lacks a tool (--tools without
// get-integration-sync-history) and against one whose Port calls all fail (--max-response-bytes
// 64), and passes only if the check then fails, naming the missing tool and each failing call.
// Prints one PASS/FAIL line per check and `inspector: N passed, M failed`; exits 1 on a failure.
import { ALL_TOOLS, DEFAULT_TOOLS, READ_CALLS, READ_TOOLS, callProblem, cleanEnv, freePort, inspect, listProblem, scratch, startHttp, tally, toolArgs, writeConfig } from "./lib.mjs";

const [bin, ...flags] = process.argv.slice(2);
if (!bin) {
  console.error('usage: node tests/inspector/check.mjs BINARY [--self-test] [--server-args "ARGS"]');
  process.exit(2);
}
const SERVER = ["--sandbox", "--toolsets", "integrations,mapping,sync"];

/// Runs the whole check against `bin` started with `extra` server arguments on `transports`.
/// Returns [{ label, problem }] (problem "" when the check passed).
async function run(extra, transports, env, dir) {
  const results = [];
  const record = (label, problem) => results.push({ label, problem });
  for (const transport of transports) {
    let target;
    let server;
    if (transport === "stdio") {
      const file = writeConfig(dir, `stdio${results.length}`, { command: bin, args: ["stdio", ...SERVER, ...extra], env: {} });
      target = ["--config", file, "--server", `stdio${results.length}`];
      const plain = writeConfig(dir, "defaults", { command: bin, args: ["stdio", "--sandbox"], env: {} });
      record(`stdio  tools/list, default toolset: the 7 tools`, listProblem(inspect(["--config", plain, "--server", "defaults"], ["--method", "tools/list"], env), DEFAULT_TOOLS));
    } else {
      const port = await freePort();
      try {
        server = await startHttp(bin, ["http", ...SERVER, ...extra, "--listen", `127.0.0.1:${port}`, "--shutdown-grace-secs", "2"], env, port);
      } catch (e) {
        record(`${transport}  server start`, e.message);
        continue;
      }
      target = [`http://127.0.0.1:${port}/mcp`, "--transport", "http"];
    }
    try {
      const list = inspect(target, ["--method", "tools/list"], env);
      let problem = listProblem(list, ALL_TOOLS);
      if (!problem) {
        const readOnly = list.json.tools.filter((t) => t.annotations?.readOnlyHint === true).map((t) => t.name).sort();
        if (readOnly.join() !== READ_TOOLS.join()) problem = `readOnlyHint tools are ${readOnly.join(", ")}`;
      }
      record(`${transport.padEnd(5)}  tools/list: the 13 tools, ${READ_TOOLS.length} read-only`, problem);
      const strict = inspect(target, ["--method", "tools/list", "--strict"], env);
      record(
        `${transport.padEnd(5)}  tools/list --strict: every input schema portable across hosts`,
        strict.status === 0 ? "" : `inspector exit ${strict.status}: ${strict.stderr.split("\n").filter((l) => /^(Error|  Path|  Issue)/.test(l)).join(" ")}`,
      );
      for (const call of READ_CALLS) {
        const r = inspect(target, ["--method", "tools/call", "--tool-name", call.tool, ...toolArgs(call.args)], env);
        record(`${transport.padEnd(5)}  tools/call ${call.tool}`, callProblem(call, r));
      }
    } finally {
      if (server) await server.stop();
    }
  }
  return results;
}

const { report, finish } = tally("inspector");

const { dir, cleanup } = scratch("inspector-check-");
const env = cleanEnv(dir);
try {
  // `--server-args "ARGS"` adds server arguments (space-separated), e.g. to watch the check fail.
  const i = flags.indexOf("--server-args");
  const extra = i >= 0 ? (flags[i + 1] ?? "").split(" ").filter(Boolean) : [];
  for (const { label, problem } of await run(extra, ["stdio", "http"], env, dir)) report(label, problem);

  if (flags.includes("--self-test")) {
    // A tool missing from the server: the list check and that tool's call must fail, naming it.
    const missing = "get-integration-sync-history";
    const fewer = await run(["--tools", ALL_TOOLS.filter((t) => t !== missing).join(",")], ["stdio"], env, dir);
    const listFail = fewer.find((r) => r.label.includes("tools/list: the 13 tools"))?.problem ?? "";
    const callFail = fewer.find((r) => r.label.endsWith(`tools/call ${missing}`))?.problem ?? "";
    report(
      `self-test  a server without ${missing} fails the check (list: "${listFail}"; call: "${callFail.slice(0, 120)}")`,
      listFail.includes(`missing ${missing}`) && callFail !== "" ? "" : "the check did not fail as it should",
    );
    // Calls that error: every Port-backed read must fail, and nothing else.
    const erroring = await run(["--max-response-bytes", "64"], ["stdio"], env, dir);
    const wrong = READ_CALLS.filter((c) => {
      const problem = erroring.find((r) => r.label.endsWith(`tools/call ${c.tool}`))?.problem ?? "";
      return c.port ? !problem.startsWith("isError") : problem !== "";
    }).map((c) => c.tool);
    const sample = erroring.find((r) => r.label.endsWith("tools/call get-integration"))?.problem ?? "";
    report(
      `self-test  a server whose Port calls fail fails every Port-backed call (e.g. get-integration: "${sample.slice(0, 140)}")`,
      wrong.length ? `not as expected for ${wrong.join(", ")}` : "",
    );
  }
} finally {
  cleanup();
}
finish();
