#!/usr/bin/env node
// Smoke test of issuer.mjs: starts it, checks discovery, a real client_credentials JWT (signature
// verified against the JWKS), each admin route, the request counters, opaque tokens and their
// introspection, and a clean SIGTERM. Exit 0 when all good.
// Bounded: every request times out after 5 s and the whole run is killed after 50 s.

import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const RESOURCE = 'http://127.0.0.1:18080/mcp';
const OPAQUE = 'http://127.0.0.1:18081/mcp';
const TTL = 120;
const READ = 'port-integrations:read';
const WRITE = 'port-integrations:write';

let child;
let failures = 0;
const watchdog = setTimeout(() => {
  console.log('FAIL: smoke test did not finish within 50 s');
  child?.kill('SIGKILL');
  process.exit(1);
}, 50_000);

function check(what, ok, detail = '') {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}${detail ? ` — ${detail}` : ''}`);
  if (!ok) failures += 1;
  return ok;
}

const decode = (part) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
function parts(jwt) {
  const [h, p, s] = jwt.split('.');
  return { header: decode(h), payload: decode(p), input: `${h}.${p}`, sig: Buffer.from(s ?? '', 'base64url') };
}

function verifyWithJwks(jwt, jwks) {
  const { header, input, sig } = parts(jwt);
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  if (!jwk) return false;
  const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
  const hash = `sha${header.alg.slice(2)}`;
  if (header.alg.startsWith('RS')) return crypto.verify(hash, Buffer.from(input), key, sig);
  if (header.alg.startsWith('PS')) {
    return crypto.verify(hash, Buffer.from(input), {
      key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: Number(header.alg.slice(2)) / 8,
    }, sig);
  }
  if (header.alg.startsWith('ES')) return crypto.verify(hash, Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }, sig);
  return false;
}

async function req(url, { method = 'GET', json, form, auth } = {}) {
  const headers = {};
  let body;
  if (json !== undefined) { headers['content-type'] = 'application/json'; body = JSON.stringify(json); }
  if (form) { headers['content-type'] = 'application/x-www-form-urlencoded'; body = new URLSearchParams(form).toString(); }
  if (auth) headers.authorization = `Basic ${Buffer.from(`${auth[0]}:${auth[1]}`).toString('base64')}`;
  const res = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  let data;
  try { data = JSON.parse(text); } catch { data = text; }
  return { status: res.status, data };
}

// --- start the issuer ------------------------------------------------------------------------
const issuerPath = fileURLToPath(new URL('./issuer.mjs', import.meta.url));
child = spawn(process.execPath, [issuerPath, '--resource', RESOURCE, '--opaque-resource', OPAQUE, '--ttl', String(TTL)], {
  stdio: ['ignore', 'pipe', 'pipe'],
});
let stderr = '';
child.stderr.on('data', (d) => { stderr += d; });
const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));

const ready = await Promise.race([
  new Promise((resolve) => createInterface({ input: child.stdout }).once('line', resolve)),
  exited.then(() => null),
  new Promise((resolve) => setTimeout(() => resolve(null), 15_000)),
]);
if (!ready) {
  console.log(`FAIL: issuer did not print its ready line\n${stderr}`);
  child.kill('SIGKILL');
  process.exit(1);
}
const info = JSON.parse(ready);
console.log(`node ${process.version}; issuer ready: ${ready}`);
const client = [info.client_id, info.client_secret];

async function token(form) {
  return req(info.token_endpoint, { method: 'POST', form: { grant_type: 'client_credentials', ...form }, auth: client });
}

try {
  // --- discovery ---------------------------------------------------------------------------
  for (const url of [info.oauth_authorization_server, info.openid_configuration]) {
    const d = await req(url);
    check(`GET ${new URL(url).pathname} → 200, issuer/jwks_uri/token_endpoint match, client_credentials listed`,
      d.status === 200 && d.data.issuer === info.issuer && d.data.jwks_uri === info.jwks_uri
      && d.data.token_endpoint === info.token_endpoint && d.data.grant_types_supported.includes('client_credentials'),
      `status ${d.status}`);
  }
  let jwks = (await req(info.jwks_uri)).data;
  check('JWKS has exactly the ready line\'s kid, public parts only', jwks.keys.length === 1 && jwks.keys[0].kid === info.kid
    && jwks.keys[0].d === undefined, JSON.stringify(jwks.keys.map((k) => ({ kid: k.kid, kty: k.kty, alg: k.alg, use: k.use }))));

  // --- a real token ------------------------------------------------------------------------
  const t = await token({ resource: RESOURCE, scope: `${READ} ${WRITE}` });
  check('client_credentials + resource → 200 Bearer', t.status === 200 && t.data.token_type === 'Bearer', JSON.stringify({ ...t.data, access_token: '…' }));
  const at = t.data.access_token;
  const { header, payload } = parts(at);
  console.log(`     header  ${JSON.stringify(header)}\n     payload ${JSON.stringify(payload)}`);
  const now = Math.floor(Date.now() / 1000);
  check('header alg RS256, typ at+jwt, kid = JWKS kid', header.alg === 'RS256' && header.typ === 'at+jwt' && header.kid === info.kid);
  check('signature verifies with the JWKS key', verifyWithJwks(at, jwks));
  check('iss = issuer', payload.iss === info.issuer);
  check('aud = resource (a string)', payload.aud === RESOURCE);
  check('scope = "read write" (space-separated string claim, no scp)', payload.scope === `${READ} ${WRITE}` && payload.scp === undefined);
  check(`exp - iat = ttl ${TTL}, exp in the future`, payload.exp - payload.iat === TTL && payload.exp > now && Math.abs(payload.iat - now) < 5);
  check('sub = client_id = the client (no azp)', payload.sub === info.client_id && payload.client_id === info.client_id && payload.azp === undefined);

  const ro = await token({ resource: RESOURCE, scope: READ });
  check('read-only request → scope "port-integrations:read" only', ro.status === 200 && parts(ro.data.access_token).payload.scope === READ);
  const noscope = await token({ resource: RESOURCE });
  check('no scope requested → JWT without any scope claim', noscope.status === 200 && !('scope' in parts(noscope.data.access_token).payload));
  const dflt = await token({ scope: READ });
  check('no resource → default resource (first --resource) as aud', dflt.status === 200 && parts(dflt.data.access_token).payload.aud === RESOURCE);
  const badRes = await token({ resource: 'http://127.0.0.1:18081/other', scope: READ });
  check('unknown resource → 400 invalid_target', badRes.status === 400 && badRes.data.error === 'invalid_target', JSON.stringify(badRes.data));
  const badSecret = await req(info.token_endpoint, { method: 'POST', form: { grant_type: 'client_credentials', resource: RESOURCE }, auth: [info.client_id, 'wrong'] });
  check('wrong client secret → 401 invalid_client', badSecret.status === 401 && badSecret.data.error === 'invalid_client');

  // --- /__admin/sign -----------------------------------------------------------------------
  const sign = async (body) => (await req(`${info.admin}/sign`, { method: 'POST', json: body })).data;
  const expired = await sign({ claims: { exp: now - 60, iat: now - 180 } });
  check('sign key=current (expired claims): verifies with JWKS, exp in the past, other claims as a real token',
    verifyWithJwks(expired.token, jwks) && parts(expired.token).payload.exp === now - 60
    && parts(expired.token).payload.aud === RESOURCE && parts(expired.token).payload.iss === info.issuer);
  const wrongAud = await sign({ claims: { aud: 'http://127.0.0.1:1/elsewhere', iss: 'http://evil.test' } });
  check('sign with wrong aud / wrong iss: verifies, claims overridden', verifyWithJwks(wrongAud.token, jwks)
    && wrongAud.payload.aud === 'http://127.0.0.1:1/elsewhere' && wrongAud.payload.iss === 'http://evil.test');
  const noExp = await sign({ claims: { exp: null } });
  check('sign with a claim set to null removes it', !('exp' in parts(noExp.token).payload));
  const other = await sign({ key: 'other' });
  check('sign key=other: same kid as JWKS, signature does NOT verify', parts(other.token).header.kid === info.kid && !verifyWithJwks(other.token, jwks));
  const hmac = await sign({ key: 'hmac-with-public' });
  {
    const { header: h, input, sig } = parts(hmac.token);
    const pem = crypto.createPublicKey({ key: jwks.keys[0], format: 'jwk' }).export({ format: 'pem', type: 'spki' });
    const expect = crypto.createHmac('sha256', pem).update(input).digest();
    check('sign key=hmac-with-public: alg HS256, kid of the RSA key, HMAC over the SPKI PEM of the JWKS key',
      h.alg === 'HS256' && h.kid === info.kid && crypto.timingSafeEqual(sig, expect));
  }
  const none = await sign({ key: 'none' });
  check('sign key=none: alg none, empty signature part', parts(none.token).header.alg === 'none' && none.token.endsWith('.'));
  const noKid = await sign({ kid: null });
  check('sign kid=null: header without kid', !('kid' in parts(noKid.token).header));

  // --- /__admin/rotate ---------------------------------------------------------------------
  const r1 = (await req(`${info.admin}/rotate`, { method: 'POST', json: {} })).data;
  jwks = (await req(info.jwks_uri)).data;
  check('rotate (keep_old default true): new kid, JWKS = [new, old]', r1.kid !== info.kid
    && jwks.keys.map((k) => k.kid).join() === [r1.kid, info.kid].join(), JSON.stringify(r1));
  const t2 = await token({ resource: RESOURCE, scope: READ });
  check('token after rotation carries the new kid and verifies', parts(t2.data.access_token).header.kid === r1.kid && verifyWithJwks(t2.data.access_token, jwks));
  check('token from before rotation still verifies (old key kept)', verifyWithJwks(at, jwks));
  const r2 = (await req(`${info.admin}/rotate`, { method: 'POST', json: { keep_old: false } })).data;
  jwks = (await req(info.jwks_uri)).data;
  check('rotate keep_old=false: JWKS = [newest] only', jwks.keys.length === 1 && jwks.keys[0].kid === r2.kid && r2.kid !== r1.kid);
  check('token from before is now unverifiable (kid gone from JWKS)', !verifyWithJwks(at, jwks) && !verifyWithJwks(t2.data.access_token, jwks));

  // --- /__admin/down and /up ---------------------------------------------------------------
  await req(`${info.admin}/down`, { method: 'POST', json: {} });
  const dj = await req(info.jwks_uri);
  const d1 = await req(info.oauth_authorization_server);
  const d2 = await req(info.openid_configuration);
  const tDown = await token({ resource: RESOURCE, scope: READ });
  check('down: JWKS and both discovery paths → 503; token endpoint still 200', dj.status === 503 && d1.status === 503 && d2.status === 503 && tDown.status === 200,
    `${dj.status} ${d1.status} ${d2.status} token ${tDown.status}`);
  await req(`${info.admin}/down`, { method: 'POST', json: { all: true } });
  const tAll = await token({ resource: RESOURCE, scope: READ });
  check('down {all:true}: token endpoint → 503 too', tAll.status === 503);
  await req(`${info.admin}/up`, { method: 'POST', json: {} });
  const uj = await req(info.jwks_uri);
  check('up: JWKS → 200 again, same keys', uj.status === 200 && uj.data.keys[0].kid === r2.kid);

  // --- request counters ----------------------------------------------------------------------
  const { hits } = (await req(`${info.admin}/state`)).data;
  check('state.hits counts non-admin requests per path, 503s included', hits['/jwks'] >= 4 && hits['/token'] >= 4
    && hits['/.well-known/oauth-authorization-server'] >= 2 && !Object.keys(hits).some((p) => p.startsWith('/__admin')), JSON.stringify(hits));

  // --- opaque tokens and introspection -------------------------------------------------------
  const op = await token({ resource: OPAQUE, scope: READ });
  check('--opaque-resource: an opaque token (not a JWT)', op.status === 200 && !op.data.access_token.includes('.'), JSON.stringify(op.data));
  const introspect = (tok, auth = [info.introspector_id, info.introspector_secret]) => req(info.introspection_endpoint, {
    method: 'POST', form: { token: tok }, auth,
  });
  const active = await introspect(op.data.access_token);
  check('introspection (introspector client): active, aud, scope, sub = client id, iss', active.status === 200 && active.data.active === true
    && active.data.aud === OPAQUE && active.data.scope === READ && active.data.sub === info.client_id && active.data.iss === info.issuer,
  JSON.stringify(active.data));
  const unknown = await introspect('never-issued');
  check('introspection of an unknown token: {active:false}', unknown.status === 200 && JSON.stringify(unknown.data) === '{"active":false}');
  const jwtIntro = await introspect(t2.data.access_token);
  check('introspection of a JWT: 400 unsupported_token_type', jwtIntro.status === 400 && jwtIntro.data.error === 'unsupported_token_type', JSON.stringify(jwtIntro.data));
  const badClient = await introspect(op.data.access_token, [info.introspector_id, 'wrong']);
  check('introspection with a wrong secret: 401 invalid_client', badClient.status === 401 && badClient.data.error === 'invalid_client');
} catch (e) {
  check('no exception', false, e.stack);
}

// --- shutdown ------------------------------------------------------------------------------------
child.kill('SIGTERM');
const end = await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve(null), 5000))]);
check('SIGTERM → exit 0', end && end.code === 0, JSON.stringify(end));
if (!end) child.kill('SIGKILL');
clearTimeout(watchdog);
if (stderr.trim()) console.log(`issuer stderr:\n${stderr.trim()}`);
console.log(failures ? `${failures} check(s) FAILED` : 'all checks passed');
process.exit(failures ? 1 : 0);
