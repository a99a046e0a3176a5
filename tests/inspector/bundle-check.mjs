// The packed MCP Bundle, installed and started the way a host does it:
//
//   node tests/inspector/bundle-check.mjs BUNDLE.mcpb
//
// Unpacks BUNDLE with `mcpb unpack` into a temporary folder, validates its manifest, and holds
// its files to the expected list. Starts the fake Port API (`sandbox-api`, from the unpacked
// binary) on a loopback port; the bundle's server reaches it through the `base_url` setting with
// the sandbox's client credentials, so the secret is really used: a token exchange that fails
// fails every call. For each set of user settings, the server's command, arguments and
// environment come from `getMcpConfigForManifest` of the pinned `@anthropic-ai/mcpb` (the
// library that substitutes `${__dirname}` and `${user_config.*}` for hosts), and the MCP
// Inspector CLI, given exactly that command in a config file, lists the tools and calls read
// tools. The started process's /proc/<pid>/cmdline must not hold the secret (it travels in the
// environment), and neither may any output. Prints PASS/FAIL lines and `bundle: N passed, M
// failed`; exits 1 on a failure.
import { spawn, spawnSync } from "node:child_process";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { DEFAULT_TOOLS, READ_CALLS, callProblem, cleanEnv, freePort, inspect, listProblem, scratch, startHttp, tally, toolArgs, writeConfig } from "./lib.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const MCPB_DIR = resolve(here, "../../packaging/node_modules/@anthropic-ai/mcpb");
const MCPB_CLI = join(MCPB_DIR, "dist/cli/cli.js");
const { getMcpConfigForManifest } = await import(pathToFileURL(join(MCPB_DIR, "dist/index.js")).href);

const bundle = process.argv[2];
if (!bundle) {
  console.error("usage: node tests/inspector/bundle-check.mjs BUNDLE.mcpb");
  process.exit(2);
}
const CLIENT_ID = "sandbox-client-id";
const SECRET = "sandbox-client-secret"; // the sandbox's own credentials: they open only the sandbox
const EXPECTED_FILES = ["LICENSE", "icon.png", "manifest.json", "server/port-integrations-mcp"];

const { report, finish } = tally("bundle");
const call = (tool) => READ_CALLS.find((c) => c.tool === tool);
const files = (dir) =>
  readdirSync(dir, { recursive: true })
    .map((f) => join(dir, f))
    .filter((f) => statSync(f).isFile())
    .map((f) => relative(dir, f))
    .sort();

/// Starts the resolved command as a host does (its env on top of a minimal one), sends one
/// initialize, and reads /proc once the answer proves the binary runs: the secret must be in
/// the process's environment and nowhere in its command line or output, and every setting must
/// have reached the environment as `expectEnv` says.
async function processProblem(resolved, base, expectEnv) {
  const child = spawn(resolved.command, resolved.args, { env: { ...base, ...resolved.env }, stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const exited = new Promise((r) => child.once("exit", r));
  child.stdin.write(`${JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "bundle-check", version: "1" } } })}\n`);
  const deadline = Date.now() + 30_000;
  while (!out.includes('"id":1') && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
  let problem = "";
  if (!out.includes('"id":1')) problem = `no answer to initialize: ${out.slice(-300)}`;
  else {
    const cmdline = readFileSync(`/proc/${child.pid}/cmdline`, "utf8").split("\0").filter(Boolean);
    const environ = readFileSync(`/proc/${child.pid}/environ`, "utf8").split("\0");
    if (cmdline[0] !== resolved.command) problem = `the process runs ${cmdline[0]}, not ${resolved.command}`;
    else if (cmdline.some((a) => a.includes(SECRET))) problem = `the secret is in the process arguments: ${cmdline.join(" ")}`;
    else if (!environ.includes(`PORT_CLIENT_SECRET=${SECRET}`)) problem = "PORT_CLIENT_SECRET is not in the process environment";
    else {
      const want = Object.entries(expectEnv).map(([k, v]) => `${k}=${v}`);
      const lost = want.filter((kv) => !environ.includes(kv));
      if (lost.length) problem = `the process environment lacks ${lost.join(", ")}`;
    }
  }
  child.stdin.end(); // stdio servers exit at end of input
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
  if (!problem && out.includes(SECRET)) problem = "the secret appears in the server's output";
  return problem;
}

const { dir, cleanup } = scratch("bundle-check-");
const env = cleanEnv(dir);
let sandbox;
try {
  const ext = join(dir, "extension");
  const unpack = spawnSync(process.execPath, [MCPB_CLI, "unpack", resolve(bundle), ext], { encoding: "utf8", env, timeout: 120_000 });
  if (!report(`mcpb unpack ${bundle}`, unpack.status === 0 ? "" : `exit ${unpack.status}: ${unpack.stderr}${unpack.stdout}`)) throw new Error("stop");
  const validate = spawnSync(process.execPath, [MCPB_CLI, "validate", join(ext, "manifest.json")], { encoding: "utf8", env, timeout: 60_000 });
  report("mcpb validate on the packed manifest", validate.status === 0 ? "" : `${validate.stdout}${validate.stderr}`);
  const got = files(ext);
  report(`the bundle holds exactly ${EXPECTED_FILES.join(", ")}`, got.join() === EXPECTED_FILES.join() ? "" : `it holds ${got.join(", ")}`);
  const manifest = JSON.parse(readFileSync(join(ext, "manifest.json"), "utf8"));
  const binary = join(ext, manifest.server.entry_point);
  report(`${manifest.server.entry_point} is executable after unpacking`, statSync(binary).mode & 0o100 ? "" : `mode ${statSync(binary).mode.toString(8)}`);

  const port = await freePort();
  sandbox = await startHttp(binary, ["sandbox-api", "--listen", `127.0.0.1:${port}`], env, port, "/v1/integration");
  const base_url = `http://127.0.0.1:${port}`;
  const resolveFor = (userConfig) =>
    getMcpConfigForManifest({
      manifest,
      extensionPath: ext,
      systemDirs: { HOME: dir, DESKTOP: dir, DOCUMENTS: dir, DOWNLOADS: dir },
      userConfig,
      pathSeparator: "/",
    });

  // A host refuses to start the server until the required settings are filled in.
  report(
    "without the client secret, the host gets no command to start (client_secret is required)",
    (await resolveFor({ client_id: CLIENT_ID, base_url })) === undefined ? "" : "a command was produced",
  );

  const cases = [
    {
      label: "defaults (eu, read-write, integrations toolset)",
      userConfig: { client_id: CLIENT_ID, client_secret: SECRET, base_url },
      env: { PORT_REGION: "eu", PORT_READ_ONLY: "false", PORT_TOOLSETS: "integrations", PORT_CLIENT_ID: CLIENT_ID, PORT_BASE_URL: base_url },
      tools: DEFAULT_TOOLS,
      calls: ["get-all-integrations", "get-integration"],
    },
    {
      label: "read_only on, toolsets integrations,sync, region us",
      userConfig: { client_id: CLIENT_ID, client_secret: SECRET, base_url, read_only: true, toolsets: "integrations,sync", region: "us" },
      env: { PORT_REGION: "us", PORT_READ_ONLY: "true", PORT_TOOLSETS: "integrations,sync", PORT_CLIENT_ID: CLIENT_ID, PORT_BASE_URL: base_url },
      tools: READ_CALLS.map((c) => c.tool).filter((t) => t !== "preview-integration-mapping").sort(),
      calls: ["get-integration-sync-status", "get-integration-s-event-logs"],
    },
  ];
  for (const c of cases) {
    const resolved = await resolveFor(c.userConfig);
    const leftover = JSON.stringify(resolved ?? {}).match(/\$\{[^}]*\}/)?.[0];
    const shapeProblem =
      resolved === undefined ? "no command (required settings missing?)"
      : resolved.command !== binary ? `command is ${resolved.command}`
      : JSON.stringify(resolved.args) !== '["stdio"]' ? `args are ${JSON.stringify(resolved.args)}`
      : leftover ? `${leftover} was not substituted`
      : resolved.env.PORT_CLIENT_SECRET !== SECRET ? "PORT_CLIENT_SECRET is not the secret entered"
      : "";
    if (!report(`${c.label}: mcp_config resolves to ${binary.replace(dir, "$TMP")} stdio, secret in env only`, shapeProblem)) continue;
    report(`${c.label}: started as the host starts it, the settings and the secret are in its environment, the secret not in its arguments or output`, await processProblem(resolved, env, c.env));

    const file = writeConfig(dir, "bundle", { command: resolved.command, args: resolved.args, env: resolved.env });
    const target = ["--config", file, "--server", "bundle"];
    const list = inspect(target, ["--method", "tools/list"], env);
    report(`${c.label}: inspector tools/list = ${c.tools.length} tools`, listProblem(list, c.tools));
    for (const tool of c.calls) {
      const r = inspect(target, ["--method", "tools/call", "--tool-name", tool, ...toolArgs(call(tool).args)], env);
      let problem = callProblem(call(tool), r);
      if (!problem && `${r.stdout}${r.stderr}`.includes(SECRET)) problem = "the secret appears in the inspector's output";
      report(`${c.label}: inspector tools/call ${tool}`, problem);
    }
  }

  // A wrong secret must fail the calls: the check above passes only because the secret the
  // user entered reached the server and authenticated it.
  const wrong = await resolveFor({ client_id: CLIENT_ID, client_secret: "not-the-secret", base_url });
  const r = inspect(["--config", writeConfig(dir, "wrong", { command: wrong.command, args: wrong.args, env: wrong.env }), "--server", "wrong"], ["--method", "tools/call", "--tool-name", "get-integration", ...toolArgs(call("get-integration").args)], env);
  report(
    "with a wrong client secret the call is a tool error (the secret entered is the one used)",
    r.json?.isError === true && /401|credential|token/i.test(r.json.content?.[0]?.text ?? "") ? "" : `got ${r.stdout.slice(0, 300)}`,
  );
} catch (e) {
  if (e.message !== "stop") report("bundle check", e.stack ?? String(e));
} finally {
  if (sandbox) await sandbox.stop();
  cleanup();
}
finish();
