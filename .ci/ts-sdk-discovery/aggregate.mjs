// The official TypeScript SDK client against the aggregator (tests/aggregate_sdk.rs runs it):
// lists the tools, calls each tool of both namespaces (and `alpha__slow_count` with a progress
// callback), and prints one JSON line: the negotiated version, the tool names, each call's
// text, the progress values in arrival order, and errors the transport reported.
//
//   node aggregate.mjs URL
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const url = process.argv[2];
const transport = new StreamableHTTPClientTransport(new URL(url));
const errors = [];
const client = new Client({ name: 'mcp-edge-aggregate-test', version: '1.0.0' });
client.onerror = (e) => errors.push(String(e?.message ?? e));
await client.connect(transport);
const { tools } = await client.listTools();
const calls = {};
for (const [name, args] of [['alpha__echo', { text: 'hi' }], ['beta__echo', { text: 'hi' }], ['beta__add', { a: 2, b: 3 }]]) {
  const answer = await client.callTool({ name, arguments: args });
  calls[name] = answer.content?.[0]?.text ?? JSON.stringify(answer);
}
const progress = [];
const counted = await client.callTool(
  { name: 'alpha__slow_count', arguments: { n: 3, delay_ms: 10 } },
  undefined,
  { onprogress: (p) => progress.push(p.progress) },
);
calls.alpha__slow_count = counted.content?.[0]?.text ?? JSON.stringify(counted);
console.log(JSON.stringify({
  protocolVersion: transport.protocolVersion ?? null,
  tools: tools.map((t) => t.name).sort(),
  calls,
  progress,
  errors,
}));
await client.close().catch(() => {});
process.exit(0);
