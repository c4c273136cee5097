"""The official Python SDK client (pip package `mcp`) against the aggregator; run by
tests/aggregate_sdk.rs with the aggregator's URL and a connect mode:

    python3 client.py URL legacy        # initialize, sessions (2025-11-25)
    python3 client.py URL 2026-07-28    # server/discover, stateless

Lists the tools, calls each tool of both namespaces (and `alpha__slow_count` with a progress
callback), and prints one JSON line: the negotiated version, the tool names, each call's text,
and the progress values in arrival order.
"""

import asyncio
import json
import sys

from mcp import Client

CALLS = [
    ("alpha__echo", {"text": "hi"}),
    ("beta__echo", {"text": "hi"}),
    ("beta__add", {"a": 2, "b": 3}),
]


async def main(url: str, mode: str) -> None:
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async with Client(url, mode=mode) as client:
        tools = await client.list_tools()
        calls = {}
        for name, arguments in CALLS:
            result = await client.call_tool(name, arguments)
            calls[name] = result.content[0].text
        counted = await client.call_tool(
            "alpha__slow_count", {"n": 3, "delay_ms": 10}, progress_callback=on_progress
        )
        calls["alpha__slow_count"] = counted.content[0].text
        print(
            json.dumps(
                {
                    "protocolVersion": client.protocol_version,
                    "tools": sorted(tool.name for tool in tools.tools),
                    "calls": calls,
                    "progress": progress,
                }
            )
        )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
