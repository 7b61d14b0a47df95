"""The server's agent process: a death at any moment leads to a fresh agent.

These tests run Agent against a small stand-in agent (a real process speaking
the same Content-Length framed JSON-RPC on stdio), so the moment it dies can
be chosen.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

from conftest import require_artifacts
from jupyterlab_bigmaac.agent import Agent, AgentUnavailable

ANSWER_TIMEOUT = 60

STAND_IN_AGENT = '''
import json, os, sys, time

def read():
    length = None
    while True:
        line = sys.stdin.buffer.readline()
        if not line:
            sys.exit(0)
        line = line.strip()
        if not line:
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return json.loads(sys.stdin.buffer.read(length))

def write(message):
    body = json.dumps(message).encode()
    sys.stdout.buffer.write(b"Content-Length: %d\\r\\n\\r\\n" % len(body) + body)
    sys.stdout.buffer.flush()

while True:
    message = read()
    method = message.get("method")
    if method == "initialize":
        write({"jsonrpc": "2.0", "id": message["id"],
               "result": {"capabilities": {}, "serverInfo": {"name": "stand-in", "version": "0"}}})
    elif method == "crash/askingSomething":
        # Exit, and have a child still holding our stdout ask the server a
        # question once the server has seen us exit.
        parent = os.getpid()
        if os.fork() == 0:
            while os.path.exists(f"/proc/{parent}"):  # gone once the server reaped it
                time.sleep(0.01)
            time.sleep(0.2)
            write({"jsonrpc": "2.0", "id": "agent-1", "method": "workspace/configuration"})
            os._exit(0)
        os._exit(3)
    elif "id" in message:
        write({"jsonrpc": "2.0", "id": message["id"], "result": {"pid": os.getpid()}})
'''


@pytest.fixture
def stand_in(tmp_path: Path) -> str:
    require_artifacts()  # Agent runs `<node> <the bundle> agent ...`; the stand-in ignores its arguments
    script = tmp_path / "stand-in-agent"
    script.write_text(f"#!{sys.executable}\n{STAND_IN_AGENT}")
    script.chmod(0o755)
    return str(script)


def test_an_agent_that_dies_while_asking_the_server_something_is_replaced(stand_in):
    async def scenario() -> None:
        agent = Agent(stand_in)
        try:
            await agent.ensure_started()
            _, first = await agent.request("whoami")
            first_pid = (await asyncio.wait_for(first, ANSWER_TIMEOUT))["result"]["pid"]

            _, crash = await agent.request("crash/askingSomething")
            with pytest.raises(AgentUnavailable):
                await asyncio.wait_for(crash, ANSWER_TIMEOUT)
            assert agent.state == "failed"
            assert "exit status 3" in agent.error

            _, second = await agent.request("whoami")  # the next use starts a new agent
            reply = await asyncio.wait_for(second, ANSWER_TIMEOUT)
            assert reply["result"]["pid"] != first_pid
            assert agent.starts == 2 and agent.state == "running"
        finally:
            await agent.stop()

    asyncio.run(scenario())
