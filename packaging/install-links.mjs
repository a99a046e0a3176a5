// Prints the one-click install links for VS Code and Cursor that README.md shows, built from
// server.json's container image so they follow its version and owner (packaging/check.mjs
// checks README holds exactly these):  node packaging/install-links.mjs
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const server = JSON.parse(readFileSync(join(here, "server.json"), "utf8"));
const image = server.packages.find((p) => p.registryType === "oci").identifier;
const docker = ["run", "-i", "--rm", "-e", "PORT_CLIENT_ID", "-e", "PORT_CLIENT_SECRET", "-e", "PORT_REGION", image, "stdio"];

// VS Code asks for the credentials once (inputs) and keeps the secret in its secret storage.
const vscodeInputs = [
  { id: "port-client-id", type: "promptString", description: "Port client ID" },
  { id: "port-client-secret", type: "promptString", description: "Port client secret", password: true },
];
const vscodeConfig = {
  type: "stdio",
  command: "docker",
  args: docker,
  env: { PORT_CLIENT_ID: "${input:port-client-id}", PORT_CLIENT_SECRET: "${input:port-client-secret}", PORT_REGION: "eu" },
};
const q = encodeURIComponent;
export const vscode = `https://insiders.vscode.dev/redirect/mcp/install?name=port-integrations&inputs=${q(JSON.stringify(vscodeInputs))}&config=${q(JSON.stringify(vscodeConfig))}`;

// Cursor's link carries the config base64-encoded; Cursor has no prompts, so the values are
// placeholders to replace in ~/.cursor/mcp.json after installing.
const cursorConfig = {
  command: "docker",
  args: docker,
  env: { PORT_CLIENT_ID: "your-client-id", PORT_CLIENT_SECRET: "your-client-secret", PORT_REGION: "eu" },
};
export const cursor = `https://cursor.com/en/install-mcp?name=port-integrations&config=${q(Buffer.from(JSON.stringify(cursorConfig)).toString("base64"))}`;

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  console.log(`VS Code: ${vscode}`);
  console.log(`Cursor:  ${cursor}`);
}
