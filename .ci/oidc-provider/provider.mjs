// A real OpenID provider for the tests (tests/auth_oidc*.rs): npm's `oidc-provider` (an
// OpenID-certified implementation) issuing access tokens by client credentials, in the JWT
// format (RFC 9068, `typ: at+jwt`), for the resource named by the `resource` parameter
// (RFC 8707 resource indicators) as audience.
//
//   node provider.mjs '<config JSON>'
//
// Config (every field optional):
//   path            the issuer's path on this server (default "/oidc"; "" for none)
//   clients         [{ client_id, client_secret, claims: {extra token claims}, ttl: seconds }]
//   scopes          the scopes a resource server accepts (default ["mcp:tools"])
//   rfc8414_only    serve the metadata only where RFC 8414 puts it for an issuer with a path
//                   (/.well-known/oauth-authorization-server{path}), not where OpenID Connect
//                   Discovery appends it
//
// Listens on a free 127.0.0.1 port and prints one line, {"issuer": "http://127.0.0.1:PORT/oidc"},
// once it serves. Exits when its standard input closes (the test's end), or on a signal.
import http from 'node:http';
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const config = JSON.parse(process.argv[2] ?? '{}');
const prefix = config.path ?? '/oidc';
const scopes = config.scopes ?? ['mcp:tools'];
const clients = config.clients ?? [];
const byId = new Map(clients.map((c) => [c.client_id, c]));

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}${prefix}`;

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signing = { ...privateKey.export({ format: 'jwk' }), kid: 'provider-key-1', use: 'sig', alg: 'RS256' };

const provider = new Provider(issuer, {
  clients: clients.map((c) => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: c.auth_method ?? 'client_secret_basic',
  })),
  jwks: { keys: [signing] },
  scopes,
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => undefined,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resource, client) => ({
        scope: scopes.join(' '),
        audience: resource,
        accessTokenFormat: 'jwt',
        accessTokenTTL: byId.get(client.clientId)?.ttl ?? 600,
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  extraTokenClaims: (_ctx, token) => byId.get(token.clientId)?.claims,
});

const callback = provider.callback();
const wellKnown = '/.well-known/openid-configuration';
server.on('request', (req, res) => {
  const url = req.url ?? '/';
  // Mounted under the issuer's path: oidc-provider builds its endpoint URLs from baseUrl.
  req.baseUrl = prefix;
  if (config.rfc8414_only && prefix && url === `/.well-known/oauth-authorization-server${prefix}`) {
    req.url = wellKnown;
    return callback(req, res);
  }
  if (config.rfc8414_only && url.startsWith(`${prefix}${wellKnown}`)) {
    res.statusCode = 404;
    return res.end();
  }
  if (url === prefix || url.startsWith(`${prefix}/`)) {
    req.url = url.slice(prefix.length) || '/';
    return callback(req, res);
  }
  res.statusCode = 404;
  res.end();
});

console.log(JSON.stringify({ issuer }));
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
