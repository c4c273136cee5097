// The official TypeScript SDK client with its own OAuth support (a client-credentials
// provider): given only the MCP endpoint's URL and its client credentials, it reads the 401's
// challenge, the RFC 9728 metadata, the authorization server's metadata, gets a token for the
// resource the metadata names, then lists the tools and calls one. Used by tests/auth_oidc.rs.
//
//   node ts-client.mjs MCP_URL CLIENT_ID CLIENT_SECRET EXPECTED_ISSUER SCOPE TOOL
//
// SCOPE is the client's configured scope: the SDK's client-credentials flow asks for it (not
// for the challenge's or the metadata's scopes, which only its interactive flow uses).
//
// Prints one JSON line: {"tools": [...names], "result": "<the tool's text>", "requests": [...]}
// where requests lists every request the client made ("METHOD URL STATUS"), in order. Exits 1
// on any error.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';

const [url, clientId, clientSecret, expectedIssuer, scope, tool] = process.argv.slice(2);
const requests = [];
const fetchFn = async (input, init) => {
  const response = await fetch(input, init);
  requests.push(`${init?.method ?? 'GET'} ${String(input instanceof Request ? input.url : input)} ${response.status}`);
  if (process.env.TS_CLIENT_DEBUG && response.status >= 400) {
    console.error(`${response.status} ${response.headers.get('www-authenticate')} ${init?.body ?? ''}`);
  }
  return response;
};
try {
  const authProvider = new ClientCredentialsProvider({ clientId, clientSecret, expectedIssuer, scope });
  const client = new Client({ name: 'ts-oauth-client-credentials', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { authProvider, fetch: fetchFn }));
  const tools = await client.listTools();
  const called = await client.callTool({ name: tool, arguments: {} });
  if (called.isError) throw new Error(`tool error: ${JSON.stringify(called.content)}`);
  const result = called.content.map((c) => c.text ?? '').join('');
  console.log(JSON.stringify({ tools: tools.tools.map((t) => t.name), result, requests }));
  await client.close();
  process.exit(0);
} catch (error) {
  console.error(`ts-client: ${error?.stack ?? error}`);
  console.error(`requests: ${JSON.stringify(requests)}`);
  process.exit(1);
}
