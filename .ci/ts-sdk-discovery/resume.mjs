// The official TypeScript SDK client calling `slow_count` through a stream that gets cut
// (tests/sse_resume_nginx.rs runs it): it resumes on its own with GET + Last-Event-ID.
// Prints one JSON line: every progress value in arrival order, the result text, and errors
// the transport reported.
//
//   node resume.mjs URL N DELAY_MS
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const [url, n, delay] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { authorization: 'Bearer alice' } },
  reconnectionOptions: { initialReconnectionDelay: 200, maxReconnectionDelay: 1000, reconnectionDelayGrowFactor: 1.5, maxRetries: 5 },
});
const errors = [];
const client = new Client({ name: 'mcp-edge-resume-test', version: '1.0.0' });
client.onerror = (e) => errors.push(String(e?.message ?? e));
await client.connect(transport);
const progress = [];
let result = null;
try {
  const answer = await client.callTool(
    { name: 'slow_count', arguments: { n, delay_ms: delay } },
    undefined,
    { onprogress: (p) => progress.push(p.progress), timeout: 60000, resetTimeoutOnProgress: true },
  );
  result = answer.content?.[0]?.text ?? JSON.stringify(answer);
} catch (e) {
  errors.push(`callTool: ${e?.message ?? e}`);
}
console.log(JSON.stringify({ progress, result, protocolVersion: transport.protocolVersion ?? null, errors }));
await client.close().catch(() => {});
process.exit(0);
