// Checks that the install metadata agrees with itself and with the build:
//   node packaging/check.mjs [--verbose] [EXTRA_SERVER_JSON...]
// - Cargo.toml's version and repository are the ones in manifest.json, server.json (and every
//   package in it), the download URL, the image tag, the Dockerfile's registry label, README and
//   its install links;
// - server.json (and each EXTRA_SERVER_JSON, e.g. the release copy with the bundle's real
//   SHA-256) validates against the vendored MCP Registry schema, and a broken copy does not
//   (so the validator cannot pass everything);
// - each package's environment variables are the manifest's mcp_config env, with the same
//   secrecy, requiredness and defaults as the user_config entries they come from.
// Prints each FAIL (every check with --verbose) and a closing count; exits 1 when any fails.
import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import Ajv from "ajv";
import addFormats from "ajv-formats";
import { cursor, vscode } from "./install-links.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..");
const read = (p) => readFileSync(join(root, p), "utf8");
const json = (p) => JSON.parse(read(p));

const args = process.argv.slice(2);
const verbose = args.includes("--verbose");
const extra = args.filter((a) => a !== "--verbose");
let passed = 0;
let failed = 0;
function check(ok, label, detail = "") {
  if (ok) passed++;
  else failed++;
  if (!ok || verbose) console.log(`${ok ? "PASS" : "FAIL"}  ${label}${!ok && detail ? `: ${detail}` : ""}`);
  return ok;
}
const eq = (a, b, label) => check(a === b, label, `${JSON.stringify(a)} != ${JSON.stringify(b)}`);

// Cargo.toml's [package] table: the single source of the version and the repository.
const cargo = read("Cargo.toml");
const pkg = cargo.split(/^\[/m).find((t) => t.startsWith("package]")) ?? "";
const field = (name) => pkg.match(new RegExp(`^${name}\\s*=\\s*"([^"]*)"`, "m"))?.[1];
const version = field("version");
const repo = field("repository");
check(Boolean(version && repo), "Cargo.toml has [package] version and repository", `${version} ${repo}`);
const owner = repo?.match(/^https:\/\/github\.com\/([^/]+)\/port-integrations-mcp$/)?.[1];
check(Boolean(owner), "repository is https://github.com/<owner>/port-integrations-mcp", repo);

const manifest = json("packaging/manifest.json");
const server = json("packaging/server.json");
eq(manifest.version, version, "manifest.json version = Cargo.toml version");
eq(server.version, version, "server.json version = Cargo.toml version");
for (const p of server.packages) eq(p.version, version, `server.json ${p.registryType} package version = Cargo.toml version`);
eq(manifest.repository?.url, repo, "manifest.json repository = Cargo.toml repository");
eq(server.repository?.url, repo, "server.json repository = Cargo.toml repository");
eq(server.name, `io.github.${owner}/port-integrations-mcp`, "server.json name is io.github.<owner>/port-integrations-mcp");
const mcpb = server.packages.find((p) => p.registryType === "mcpb");
const oci = server.packages.find((p) => p.registryType === "oci");
eq(
  mcpb?.identifier,
  `${repo}/releases/download/v${version}/port-integrations-mcp-${version}-linux-x64.mcpb`,
  "server.json bundle URL is the release asset scripts/package-mcpb names",
);
eq(oci?.identifier, `ghcr.io/${owner?.toLowerCase()}/port-integrations-mcp:${version}`, "server.json image is ghcr.io/<owner>/port-integrations-mcp:<version>");
eq(
  read("deploy/Dockerfile").match(/^LABEL io\.modelcontextprotocol\.server\.name="([^"]+)"/m)?.[1],
  server.name,
  "Dockerfile's io.modelcontextprotocol.server.name label = server.json name (the registry's ownership check)",
);
const readmeRepos = new Set([...read("README.md").matchAll(/github\.com\/([^/\s]+)\/port-integrations-mcp/g)].map((m) => m[1]));
check(readmeRepos.size > 0 && [...readmeRepos].every((o) => o === owner), "README names the same repository", [...readmeRepos].join(", "));

const readme = read("README.md");
check(readme.includes(vscode), "README's VS Code install link is the one packaging/install-links.mjs builds");
check(readme.includes(cursor), "README's Cursor install link is the one packaging/install-links.mjs builds");

// Environment variables: server.json's packages offer what the bundle's host sets.
const env = manifest.server.mcp_config.env;
for (const p of server.packages) {
  const vars = p.environmentVariables ?? [];
  eq(vars.map((v) => v.name).sort().join(","), Object.keys(env).sort().join(","), `server.json ${p.registryType} environment = manifest mcp_config env`);
  for (const v of vars) {
    const key = env[v.name]?.match(/^\$\{user_config\.([a-z_]+)\}$/)?.[1];
    const uc = manifest.user_config[key];
    if (!check(Boolean(uc), `${p.registryType} ${v.name} comes from a user_config entry`, env[v.name])) continue;
    eq(Boolean(v.isSecret), Boolean(uc.sensitive), `${p.registryType} ${v.name} isSecret = user_config ${key} sensitive`);
    eq(Boolean(v.isRequired), Boolean(uc.required), `${p.registryType} ${v.name} isRequired = user_config ${key} required`);
    const want = uc.default === undefined || uc.default === "" ? undefined : String(uc.default);
    eq(v.default, want, `${p.registryType} ${v.name} default = user_config ${key} default`);
    check(typeof v.description === "string" && v.description.length > 0, `${p.registryType} ${v.name} has a description`);
  }
}

// The vendored registry schema, unchanged since it was copied.
const schemaText = read("packaging/schemas/server.schema.json");
const digest = createHash("sha256").update(schemaText).digest("hex");
check(read("packaging/schemas/README.md").includes(digest), "vendored server.schema.json matches the SHA-256 in packaging/schemas/README.md", digest);
const schema = JSON.parse(schemaText);
eq(server.$schema, schema.$id, "server.json $schema = the vendored schema's $id");
const ajv = new Ajv({ allErrors: true, strict: false });
addFormats(ajv);
const validate = ajv.compile(schema);
const valid = (doc) => (validate(doc) ? "" : ajv.errorsText(validate.errors, { separator: "; " }));
for (const file of ["packaging/server.json", ...extra]) {
  const doc = JSON.parse(readFileSync(resolve(root, file), "utf8"));
  const errors = valid(doc);
  check(errors === "", `${file} validates against the MCP Registry schema 2025-12-11`, errors);
}
// The validator must reject what the registry rejects.
const broken = [
  ["no name", (d) => delete d.name],
  ["a description over 100 characters", (d) => (d.description = "x".repeat(101))],
  ["a bundle hash that is not hex", (d) => (d.packages[0].fileSha256 = "not-a-sha256")],
  ["a package version `latest`", (d) => (d.packages[1].version = "latest")],
];
for (const [what, mutate] of broken) {
  const doc = structuredClone(server);
  mutate(doc);
  check(valid(doc) !== "", `the schema rejects server.json with ${what}`, "it validated");
}

console.log(`packaging metadata: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
