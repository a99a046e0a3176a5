#!/usr/bin/env node
// Test authorization server for the OAuth 2.1 resource-server tests (issue 12).
//
// Starts oidc-provider (pinned in package.json) on 127.0.0.1, prints ONE JSON line on stdout when
// ready, then serves until SIGTERM/SIGINT (exit 0). Everything else (oidc-provider notices, logs)
// goes to stderr. Admin routes for tests live under /__admin/ on the same port (see README.md).
//
// Flags (env in brackets):
//   --port N              listen port, 0 = any free port (default 0)         [OAUTH_PORT]
//   --client-id ID        confidential client id (default port-integrations-test)  [OAUTH_CLIENT_ID]
//   --client-secret S     its secret (default port-integrations-test-secret)       [OAUTH_CLIENT_SECRET]
//   --resource URL        accepted resource indicator; repeatable; the first one is also the default
//                         resource when a token request has none. Without it ANY absolute URI is
//                         accepted and a request without `resource` gets an opaque token. [OAUTH_RESOURCE]
//   --scopes "a b"        scopes the resource server offers
//                         (default "port-integrations:read port-integrations:write")     [OAUTH_SCOPES]
//   --ttl SECONDS         access token lifetime (default 300)                            [OAUTH_TTL]
//   --alg ALG             signing alg of the provider key: RS256 (default), PS256 or ES256 [OAUTH_ALG]
//   --opaque-resource URL a resource (also accepted when --resource is given) whose access tokens are
//                         OPAQUE, for the RFC 7662 introspection path; repeatable [OAUTH_OPAQUE_RESOURCE]
//   --introspector-id ID  a second confidential client, for the resource server's introspection calls
//                         (default port-integrations-mcp)                          [OAUTH_INTROSPECTOR_ID]
//   --introspector-secret S  its secret (default port-integrations-mcp-secret) [OAUTH_INTROSPECTOR_SECRET]

import * as crypto from 'node:crypto';
import * as http from 'node:http';
import { parseArgs } from 'node:util';

// oidc-provider prints its NOTICEs with console.info (stdout); keep stdout for the ready line only.
console.info = console.error;
console.log = console.error;

const { Provider, errors } = await import('oidc-provider');

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.OAUTH_PORT ?? '0' },
    'client-id': { type: 'string', default: process.env.OAUTH_CLIENT_ID ?? 'port-integrations-test' },
    'client-secret': { type: 'string', default: process.env.OAUTH_CLIENT_SECRET ?? 'port-integrations-test-secret' },
    resource: { type: 'string', multiple: true, default: process.env.OAUTH_RESOURCE ? process.env.OAUTH_RESOURCE.split(/\s+/).filter(Boolean) : [] },
    scopes: { type: 'string', default: process.env.OAUTH_SCOPES ?? 'port-integrations:read port-integrations:write' },
    ttl: { type: 'string', default: process.env.OAUTH_TTL ?? '300' },
    alg: { type: 'string', default: process.env.OAUTH_ALG ?? 'RS256' },
    'opaque-resource': { type: 'string', multiple: true, default: process.env.OAUTH_OPAQUE_RESOURCE ? process.env.OAUTH_OPAQUE_RESOURCE.split(/\s+/).filter(Boolean) : [] },
    'introspector-id': { type: 'string', default: process.env.OAUTH_INTROSPECTOR_ID ?? 'port-integrations-mcp' },
    'introspector-secret': { type: 'string', default: process.env.OAUTH_INTROSPECTOR_SECRET ?? 'port-integrations-mcp-secret' },
  },
  strict: true,
});

const CLIENT_ID = args['client-id'];
const CLIENT_SECRET = args['client-secret'];
const OPAQUE = args['opaque-resource'];
// Opaque resources are accepted too (they follow the JWT ones, so --resource's first stays the default).
const RESOURCES = args.resource.length ? [...args.resource, ...OPAQUE.filter((r) => !args.resource.includes(r))] : args.resource;
const INTROSPECTOR_ID = args['introspector-id'];
const INTROSPECTOR_SECRET = args['introspector-secret'];
const SCOPES = args.scopes.split(/\s+/).filter(Boolean);
const TTL = Number.parseInt(args.ttl, 10);
const ALG = args.alg;
if (!(TTL > 0)) throw new Error('--ttl must be a positive integer');
if (!['RS256', 'PS256', 'ES256'].includes(ALG)) throw new Error('--alg must be RS256, PS256 or ES256');

// ---------------------------------------------------------------------------------------------
// Keys. The provider's signing keys are ours, so the admin routes can sign with them too.

function newKey(alg = ALG) {
  const { privateKey } = alg === 'ES256'
    ? crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = `k-${crypto.randomBytes(6).toString('hex')}`;
  return { kid, alg, privateKey, publicKey: crypto.createPublicKey(privateKey) };
}

const state = {
  keys: [newKey()], // keys[0] signs; the others are only published in the JWKS
  foreign: newKey(), // never published: "bad signature" tokens
  down: null, // null | 'discovery+jwks' | 'all'
  provider: null,
  rotations: 0,
  hits: {}, // path -> requests received (non-admin routes, counted even while down)
};

// ---------------------------------------------------------------------------------------------
// A tiny shared in-memory adapter (the provider is rebuilt on key rotation; the data survives it,
// and it avoids oidc-provider's "development-only adapter" warning).

const store = new Map();
class MemoryAdapter {
  constructor(name) { this.name = name; }
  key(id) { return `${this.name}:${id}`; }
  async upsert(id, payload, expiresIn) {
    store.set(this.key(id), { payload, exp: expiresIn ? Date.now() + expiresIn * 1000 : Infinity });
  }
  async find(id) {
    const e = store.get(this.key(id));
    if (!e) return undefined;
    if (e.exp < Date.now()) { store.delete(this.key(id)); return undefined; }
    return e.payload;
  }
  async findByUserCode() { return undefined; }
  async findByUid() { return undefined; }
  async consume(id) { const e = store.get(this.key(id)); if (e) e.payload.consumed = Math.floor(Date.now() / 1000); }
  async destroy(id) { store.delete(this.key(id)); }
  async revokeByGrantId() {}
}

// ---------------------------------------------------------------------------------------------
// The provider.

function buildProvider(issuer) {
  const jwks = {
    keys: state.keys.map((k) => ({ ...k.privateKey.export({ format: 'jwk' }), kid: k.kid, alg: k.alg, use: 'sig' })),
  };
  const provider = new Provider(issuer, {
    adapter: MemoryAdapter,
    jwks,
    // Listed so discovery's scopes_supported shows them; they are granted through the resource server.
    scopes: ['openid', 'offline_access', ...SCOPES],
    clients: [{
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
    }, {
      // The resource server's own client: it only introspects (RFC 7662), with client_secret_basic.
      client_id: INTROSPECTOR_ID,
      client_secret: INTROSPECTOR_SECRET,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    clientDefaults: { id_token_signed_response_alg: state.keys[0].alg },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      // RFC 7662 at /token/introspection; only opaque tokens can be introspected (oidc-provider
      // answers {active:false} for anything it did not issue, 400 unsupported_token_type for a
      // JWT). Every client here authenticates, so each may introspect any token.
      introspection: { enabled: true, allowedPolicy: async () => true },
      revocation: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => RESOURCES[0],
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, resource) => {
          if (RESOURCES.length && !RESOURCES.includes(resource)) {
            throw new errors.InvalidTarget(`resource not served by this test issuer: ${resource}`);
          }
          return {
            scope: SCOPES.join(' '),
            audience: resource,
            accessTokenTTL: TTL,
            accessTokenFormat: OPAQUE.includes(resource) ? 'opaque' : 'jwt',
            jwt: { sign: { alg: state.keys[0].alg, kid: state.keys[0].kid } },
          };
        },
      },
    },
    // Opaque tokens: introspection then answers `sub` (= the client id), as the JWTs carry it.
    extraTokenClaims: async (_ctx, token) => (
      token.kind === 'ClientCredentials' && token.resourceServer?.accessTokenFormat === 'opaque'
        ? { sub: token.clientId } : undefined),
    ttl: {
      ClientCredentials: () => TTL,
      AccessToken: () => TTL,
    },
  });
  // Loopback http issuer: no proxy, no TLS; nothing else to relax in oidc-provider 9.x.
  return provider;
}

// ---------------------------------------------------------------------------------------------
// Signing arbitrary tokens (malicious cases) with node:crypto only.

const b64u = (buf) => Buffer.from(buf).toString('base64url');

function signJwt(header, payload, how) {
  const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(payload))}`;
  const { alg } = header;
  if (how === 'none' || alg === 'none') return `${input}.`;
  const bits = alg.slice(2);
  const hash = `sha${bits}`;
  let sig;
  if (alg.startsWith('HS')) {
    sig = crypto.createHmac(hash, how.secret).update(input).digest();
  } else if (alg.startsWith('RS')) {
    sig = crypto.sign(hash, Buffer.from(input), how.key);
  } else if (alg.startsWith('PS')) {
    sig = crypto.sign(hash, Buffer.from(input), {
      key: how.key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: Number(bits) / 8,
    });
  } else if (alg.startsWith('ES')) {
    sig = crypto.sign(hash, Buffer.from(input), { key: how.key, dsaEncoding: 'ieee-p1363' });
  } else {
    throw new Error(`unsupported alg ${alg}`);
  }
  return `${input}.${b64u(sig)}`;
}

// body: { claims?: {...}, alg?, kid?, key?: current|other|hmac-with-public|none, typ?, header?: {...},
//         defaults?: true }
// With defaults (the default) the claims of a real token are filled in first (iss, sub, client_id,
// aud = first --resource, scope = all scopes, iat, exp = now + ttl, jti); `claims` override them and
// a claim set to null is removed. The header is {alg, typ: "at+jwt", kid} plus `header`; a kid set to
// null is left out.
function adminSign(issuer, body) {
  const keyMode = body.key ?? 'current';
  const cur = state.keys[0];
  const now = Math.floor(Date.now() / 1000);
  const base = body.defaults === false ? {} : {
    iss: issuer,
    sub: CLIENT_ID,
    client_id: CLIENT_ID,
    ...(RESOURCES[0] ? { aud: RESOURCES[0] } : {}),
    scope: SCOPES.join(' '),
    iat: now,
    exp: now + TTL,
    jti: crypto.randomBytes(12).toString('base64url'),
  };
  const payload = { ...base, ...(body.claims ?? {}) };
  for (const [k, v] of Object.entries(payload)) if (v === null) delete payload[k];

  let alg; let how; let kid = cur.kid;
  switch (keyMode) {
    case 'current':
      alg = body.alg ?? cur.alg; how = { key: cur.privateKey }; break;
    case 'other':
      alg = body.alg ?? state.foreign.alg; how = { key: state.foreign.privateKey }; break;
    case 'hmac-with-public':
      alg = body.alg ?? 'HS256';
      if (!alg.startsWith('HS')) throw new Error('hmac-with-public needs an HS* alg');
      how = { secret: cur.publicKey.export({ format: 'pem', type: 'spki' }) }; break;
    case 'none':
      alg = 'none'; how = 'none'; break;
    default:
      throw new Error(`unknown key mode ${keyMode}`);
  }
  if ('kid' in body) kid = body.kid;
  const header = { alg, typ: body.typ ?? 'at+jwt', ...(kid != null ? { kid } : {}), ...(body.header ?? {}) };
  return { token: signJwt(header, payload, how), header, payload };
}

// ---------------------------------------------------------------------------------------------
// HTTP front: /__admin/* here, everything else to the current provider.

function readJson(req, limit = 1 << 20) {
  return new Promise((resolve, reject) => {
    let size = 0; const chunks = [];
    req.on('data', (c) => { size += c.length; if (size > limit) { reject(new Error('body too large')); req.destroy(); } else chunks.push(c); });
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8').trim();
      try { resolve(text ? JSON.parse(text) : {}); } catch (e) { reject(new Error(`invalid JSON body: ${e.message}`)); }
    });
    req.on('error', reject);
  });
}

function send(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

const publicJwks = () => ({
  keys: state.keys.map((k) => ({ ...k.publicKey.export({ format: 'jwk' }), kid: k.kid, alg: k.alg, use: 'sig' })),
});

let issuer;
let handler;

async function admin(req, res, path) {
  if (req.method === 'GET' && path === '/__admin/state') {
    return send(res, 200, { issuer, kid: state.keys[0].kid, kids: state.keys.map((k) => k.kid), down: state.down, rotations: state.rotations, hits: state.hits, jwks: publicJwks() });
  }
  if (req.method !== 'POST') return send(res, 405, { error: 'POST only' });
  const body = await readJson(req);
  switch (path) {
    case '/__admin/rotate': {
      // body: { keep_old?: true } — keep_old false drops every old key from the JWKS.
      const keepOld = body.keep_old !== false;
      const old = state.keys.map((k) => k.kid);
      state.keys = keepOld ? [newKey(), ...state.keys] : [newKey()];
      state.rotations += 1;
      state.provider = buildProvider(issuer);
      handler = state.provider.callback();
      return send(res, 200, { kid: state.keys[0].kid, previous: old, kids: state.keys.map((k) => k.kid), keep_old: keepOld });
    }
    case '/__admin/sign':
      return send(res, 200, adminSign(issuer, body));
    case '/__admin/down':
      // body: { all?: false } — by default only discovery (both paths) and the JWKS answer 503;
      // with all: true every non-admin route does (token endpoint included).
      state.down = body.all ? 'all' : 'discovery+jwks';
      return send(res, 200, { down: state.down });
    case '/__admin/up':
      state.down = null;
      return send(res, 200, { down: null });
    default:
      return send(res, 404, { error: `no admin route ${path}` });
  }
}

const DOWN_PATHS = new Set(['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration', '/jwks']);

const server = http.createServer((req, res) => {
  const path = new URL(req.url, 'http://x').pathname;
  if (path.startsWith('/__admin/')) {
    admin(req, res, path).catch((e) => send(res, 400, { error: String(e.message ?? e) }));
    return;
  }
  state.hits[path] = (state.hits[path] ?? 0) + 1;
  if (state.down === 'all' || (state.down && DOWN_PATHS.has(path))) {
    send(res, 503, { error: 'temporarily_unavailable', error_description: 'test issuer is down (/__admin/down)' });
    return;
  }
  handler(req, res);
});
server.requestTimeout = 10_000;
server.headersTimeout = 5_000;
server.keepAliveTimeout = 1_000;

const port = Number.parseInt(args.port, 10);
await new Promise((resolve, reject) => { server.once('error', reject); server.listen(port, '127.0.0.1', resolve); });
issuer = `http://127.0.0.1:${server.address().port}`;
state.provider = buildProvider(issuer);
handler = state.provider.callback();

const shutdown = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

process.stdout.write(`${JSON.stringify({
  issuer,
  jwks_uri: `${issuer}/jwks`,
  token_endpoint: `${issuer}/token`,
  introspection_endpoint: `${issuer}/token/introspection`,
  oauth_authorization_server: `${issuer}/.well-known/oauth-authorization-server`,
  openid_configuration: `${issuer}/.well-known/openid-configuration`,
  admin: `${issuer}/__admin`,
  client_id: CLIENT_ID,
  client_secret: CLIENT_SECRET,
  resources: RESOURCES,
  opaque_resources: OPAQUE,
  introspector_id: INTROSPECTOR_ID,
  introspector_secret: INTROSPECTOR_SECRET,
  scopes: SCOPES,
  ttl: TTL,
  alg: state.keys[0].alg,
  kid: state.keys[0].kid,
  pid: process.pid,
})}\n`);
