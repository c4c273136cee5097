// RFC 9728 discovery with the official TypeScript SDK against examples/server.rs, as a client
// does it: the 401's resource_metadata, the path-inserted well-known URI, the root one; the
// token audience the SDK selects must be the one the server's JWT verifier accepts.
//
//   cargo build --example server --features jwks-fetch
//   cd .ci/ts-sdk-discovery && npm install --no-audit --no-fund && node discover.mjs
import http from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { discoverOAuthProtectedResourceMetadata, selectResourceURL, extractWWWAuthenticateParams } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const repo = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
const freePort = () => new Promise(r => { const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => r(p)); }); });
const [jwksPort, port] = [await freePort(), await freePort()];
const pem = fs.readFileSync(`${repo}/tests/keys/rsa1.pem`);
const key = crypto.createPrivateKey(pem);
const jwk = { ...crypto.createPublicKey(key).export({ format: 'jwk' }), kid: 'rsa1', alg: 'RS256', use: 'sig' };
const jwks = http.createServer((req, res) => { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify({ keys: [jwk] })); });
await new Promise(r => jwks.listen(jwksPort, '127.0.0.1', r));
const origin = `http://127.0.0.1:${port}`;
const serverUrl = `${origin}/mcp`;
const server = spawn(`${repo}/target/debug/examples/server`, ['--jwks-url', `http://127.0.0.1:${jwksPort}/jwks`, '--issuer', 'https://as.test', '--public-url', serverUrl, '--bind', `127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'inherit'] });
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const mint = (iss, aud) => {
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64({ alg: 'RS256', kid: 'rsa1', typ: 'at+jwt' })}.${b64({ iss, aud, sub: 'alice', client_id: 'ts', scope: 'mcp:tools', iat: now, exp: now + 600 })}`;
  return `${input}.${crypto.sign('sha256', Buffer.from(input), key).toString('base64url')}`;
};
let failed = false;
const check = (ok, what) => { console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`); if (!ok) failed = true; };
try {
  for (let i = 0; i < 50; i++) { try { await fetch(serverUrl, { method: 'GET' }); break; } catch { await new Promise(r => setTimeout(r, 100)); } }
  // 1. the 401's resource_metadata
  const unauth = await fetch(serverUrl, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } } }) });
  const { resourceMetadataUrl } = extractWWWAuthenticateParams(unauth);
  check(unauth.status === 401 && String(resourceMetadataUrl) === `${origin}/.well-known/oauth-protected-resource/mcp`, `401 challenge resource_metadata=${resourceMetadataUrl}`);
  const viaHeader = await discoverOAuthProtectedResourceMetadata(serverUrl, { resourceMetadataUrl });
  // 2. path-inserted first (no header)
  const viaPath = await discoverOAuthProtectedResourceMetadata(serverUrl);
  // 3. root fallback: a fetch that 404s the path-inserted URI (as a proxy not routing it would)
  const rootOnly = (url, init) => String(url).endsWith('/oauth-protected-resource/mcp') ? Promise.resolve(new Response('', { status: 404 })) : fetch(url, init);
  const viaRoot = await discoverOAuthProtectedResourceMetadata(serverUrl, undefined, rootOnly);
  for (const [name, md] of [['header', viaHeader], ['path-inserted', viaPath], ['root', viaRoot]]) {
    const resource = await selectResourceURL(serverUrl, {}, md);
    check(md.resource === serverUrl && resource?.href === serverUrl, `${name}: resource=${md.resource} -> token audience ${resource?.href}`);
  }
  // 4. a token for the audience the SDK selected, from the server the metadata names
  const aud = (await selectResourceURL(serverUrl, {}, viaPath)).href;
  const token = mint(viaPath.authorization_servers[0], aud);
  const client = new Client({ name: 'ts-probe', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(serverUrl), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
  const tools = await client.listTools();
  const who = await client.callTool({ name: 'whoami', arguments: {} });
  check(tools.tools.length > 0 && !who.isError, `connected with aud=${aud}: ${tools.tools.length} tools, whoami ok`);
  await client.close();
  // 5. the origin audience (what a root document naming the origin led to) is refused
  const bad = new Client({ name: 'ts-probe', version: '1' });
  let refused = false;
  try { await bad.connect(new StreamableHTTPClientTransport(new URL(serverUrl), { requestInit: { headers: { Authorization: `Bearer ${mint('https://as.test', `${origin}/`)}` } } })); } catch (e) { refused = /401|Unauthorized/i.test(String(e)); }
  check(refused, 'token with the origin audience refused (401)');
} catch (e) { console.log('FAIL', e); failed = true; }
server.kill(); jwks.close();
process.exit(failed ? 1 : 0);
