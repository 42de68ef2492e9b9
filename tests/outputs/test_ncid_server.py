"""The NCID server over real loopback sockets: start-up, call log, requests, limits, allow-list.

The server runs in the test's event loop with a real hub and SQLite call log; clients
are plain TCP connections reading lines, the way every NCID client does.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from cidbridge.config import NcidConfig
from cidbridge.core.tracker import CALL, END, RING, CallEvent
from cidbridge.hub import Hub
from cidbridge.outputs import Outputs
from cidbridge.outputs.ncid import NcidServer
from cidbridge.store import CallLog

TIMEOUT = 10.0


class Client:
    """A raw NCID client: connect, send lines, read lines."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int, *, source: str | None = None) -> Client:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if source:
            sock.bind((source, 0))
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        return cls(*await asyncio.open_connection(sock=sock))

    async def send(self, text: str) -> None:
        self.writer.write(text.encode())
        await self.writer.drain()

    async def line(self) -> str | None:
        raw = await asyncio.wait_for(self.reader.readline(), TIMEOUT)
        return raw.decode().rstrip("\r\n") if raw else None

    async def until(self, prefix: str) -> list[str]:
        """Lines up to and including the first that starts with ``prefix``."""
        lines: list[str] = []
        while True:
            line = await self.line()
            assert line is not None, f"closed before {prefix!r}; got {lines}"
            lines.append(line)
            if line.startswith(prefix):
                return lines

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


class Rig:
    def __init__(self, hub: Hub, server: NcidServer) -> None:
        self.hub, self.server = hub, server
        self.calls = 0

    @property
    def port(self) -> int:
        assert self.server.listening is not None
        return self.server.listening[1]

    async def call(self, number: str, *, end: bool = True, line: str = "desk") -> None:
        self.calls += 1
        call_id = f"call-{self.calls}"
        await self.hub.publish(CallEvent(RING, call_id, line, ring_count=1))
        await self.hub.publish(
            CallEvent(CALL, call_id, line, number=number, name=f"NAME {number}", ring_count=1)
        )
        if end:
            await self.hub.publish(
                CallEvent(END, call_id, line, number=number, ring_count=1, outcome="unknown")
            )


@contextlib.asynccontextmanager
async def rig(tmp_path: Path, **options: Any) -> AsyncIterator[Rig]:
    store = CallLog(tmp_path / "calls.sqlite").open()
    hub = Hub(store, region="KR")
    server = NcidServer(
        replace(NcidConfig(enabled=True, port=0), **options), hub, hangs_up=lambda line: False
    )
    outputs = Outputs([server])
    hub.sinks.append(outputs)
    await outputs.start()
    for _ in range(200):
        if server.listening:
            break
        await asyncio.sleep(0.01)
    try:
        yield Rig(hub, server)
    finally:
        await outputs.close()
        store.close()


def run(tmp_path: Path, scenario: Callable[[Rig], Awaitable[None]], **options: Any) -> None:
    async def main() -> None:
        async with rig(tmp_path, **options) as r:
            await scenario(r)

    asyncio.run(main())


def test_start_up_sends_the_call_log_then_live_events(tmp_path: Path) -> None:
    async def scenario(r: Rig) -> None:
        for number in ("0101", "0102", "0103"):
            await r.call(number)
        client = await Client.connect(r.port)
        await client.send("HELLO: IDENT: test client\n")
        startup = await client.until("300")
        assert startup[0].startswith("200 Server: cidbridge (NCID) ")
        assert startup[1] == "210 API: 1.0 Feature Set 1 4"
        assert startup[2] == "254 Start of call log"
        log = [line for line in startup if line.startswith("CIDLOG: ")]
        assert [line.split("*NMBR*")[1].split("*")[0] for line in log] == ["0101", "0102", "0103"]
        assert startup[-3:] == ["250 End of call log", "OPT: country: KR", "300 End of connection startup"]
        await r.call("0104")
        live = [await client.line() for _ in range(3)]
        assert live[0] is not None and live[0].startswith("CIDINFO: *LINE*desk*RING*1*")
        assert live[1] is not None and live[1].startswith("CID: *DATE*") and "*NMBR*0104*" in live[1]
        assert live[2] is not None and live[2].startswith("CIDINFO: *LINE*desk*RING*0*")
        await client.close()

    run(tmp_path, scenario)


def test_call_log_size_and_empty_log(tmp_path: Path) -> None:
    async def scenario(r: Rig) -> None:
        client = await Client.connect(r.port)
        assert "252 Call log empty" in await client.until("300")
        for number in ("1", "2", "3", "4"):
            await r.call(number)
        other = await Client.connect(r.port)
        log = [line for line in await other.until("300") if line.startswith("CIDLOG:")]
        assert ["*NMBR*3*" in log[0], "*NMBR*4*" in log[1], len(log)] == [True, True, 2]
        await client.close()
        await other.close()

    run(tmp_path, scenario, call_log=2)


def test_no_log_and_events_during_the_start_up_are_sent_once(tmp_path: Path) -> None:
    async def scenario(r: Rig) -> None:
        await r.call("0100")
        # This client asks for the log; a call is committed while it is starting up.
        with_log = await Client.connect(r.port)
        assert (await with_log.line() or "").startswith("200 ")
        assert (await with_log.line() or "").startswith("210 ")
        # And this one says no_log; the same call arrives during its start-up.
        no_log = await Client.connect(r.port)
        await no_log.send("HELLO: IDENT: gateway\r\nHELLO: CMD: no_log\r\n")
        await r.call("0200", end=False)
        await with_log.send("HELLO: CMD: send_log\n")
        first = await with_log.until("300")
        assert [line for line in first if line.startswith("CIDLOG")] == [
            line for line in first if "0100" in line or "0200" in line
        ]
        assert len([line for line in first if line.startswith("CIDLOG")]) == 2
        second = await no_log.until("300")
        assert "251 Call log not sent" in second
        await r.call("0300")
        # with_log: 0200 was in its log, so only 0300's lines follow; no_log: both calls live.
        seen_with_log = [await with_log.line() for _ in range(3)]
        assert all("0200" not in (line or "") for line in seen_with_log)
        assert "*NMBR*0300*" in (seen_with_log[1] or "")
        seen_no_log = [await no_log.line() for _ in range(5)]
        cid = [line for line in seen_no_log if line and line.startswith("CID:")]
        assert ["*NMBR*0200*" in cid[0], "*NMBR*0300*" in cid[1]] == [True, True]
        await with_log.close()
        await no_log.close()

    run(tmp_path, scenario)


def test_req_yo_keep_alives_and_goodbye(tmp_path: Path) -> None:
    async def scenario(r: Rig) -> None:
        client = await Client.connect(r.port)
        await client.send("HELLO: CMD: no_log\n")
        await client.until("300")
        await client.send("\n\r\nREQ: YO\r")
        assert await client.line() == "ACK: REQ YO"
        await client.send("GOODBYE\r\n")
        assert await client.line() is None  # the server closed the connection
        for _ in range(100):
            if not r.server.clients:
                break
            await asyncio.sleep(0.01)
        assert r.server.status()["clients"] == 0

    run(tmp_path, scenario)


def test_a_fifty_first_client_is_told_and_closed(tmp_path: Path) -> None:
    async def scenario(r: Rig) -> None:
        clients = [await Client.connect(r.port) for _ in range(3)]
        for client in clients:
            assert (await client.line() or "").startswith("200 ")
        extra = await Client.connect(r.port)
        assert await extra.line() == "MSG: Too many clients connected"
        assert await extra.line() is None
        assert r.server.status()["counters"]["clients_refused"] == 1
        await clients[0].close()
        for _ in range(100):
            if len(r.server.clients) < 3:
                break
            await asyncio.sleep(0.01)
        again = await Client.connect(r.port)
        assert (await again.line() or "").startswith("200 ")
        for client in [*clients[1:], again, extra]:
            await client.close()

    run(tmp_path, scenario, max_clients=3)


def test_only_allowed_addresses_and_this_pc_are_served(tmp_path: Path) -> None:
    async def scenario(r: Rig) -> None:
        stranger = await Client.connect(r.port, source="127.0.0.2")
        assert await stranger.line() is None  # closed at once, without a word
        friend = await Client.connect(r.port, source="127.0.0.3")
        assert (await friend.line() or "").startswith("200 ")
        local = await Client.connect(r.port, source="127.0.0.1")
        assert (await local.line() or "").startswith("200 ")
        assert r.server.status()["counters"]["clients_refused"] == 1
        for client in (stranger, friend, local):
            await client.close()

    run(tmp_path, scenario, allowed_clients=("127.0.0.3",))


def test_overlong_lines_close_the_client(tmp_path: Path) -> None:
    async def scenario(r: Rig) -> None:
        client = await Client.connect(r.port)
        await client.send("HELLO: CMD: no_log\n")
        await client.until("300")
        await client.send("x" * 5000)
        assert await client.line() is None

    run(tmp_path, scenario)


def test_a_client_that_stops_reading_is_cut_off_and_the_others_get_everything(tmp_path: Path) -> None:
    async def scenario(r: Rig) -> None:
        # A plain socket nobody reads from (a StreamReader would keep reading into its buffer).
        stuck = socket.socket()
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.connect(("127.0.0.1", r.port))
        stuck.sendall(b"HELLO: CMD: no_log\n")
        reader = await Client.connect(r.port)
        await reader.send("HELLO: CMD: no_log\n")
        await reader.until("300")
        await asyncio.sleep(0.3)  # stuck is live too; it never reads another byte
        events = 60_000  # ~7 MB: more than the kernel buffers (up to 4 MB) and ours hold
        name = "N" * 60
        received = 0

        async def read_all() -> None:
            nonlocal received
            while received < events:
                line = await reader.line()
                assert line is not None
                received += line.startswith("CID:")

        reading = asyncio.create_task(read_all())
        for i in range(events):
            event = {
                "id": 10 + i,
                "type": "call",
                "call_id": f"c{i}",
                "line": "desk",
                "number": str(i),
                "name": name,
            }
            r.server.deliver(event)  # never blocks, whatever the clients do
            while received < i - 1000:  # the good client reads as fast as it can; calls wait for it
                await asyncio.sleep(0.001)
        await asyncio.wait_for(reading, 60)
        assert received == events
        assert r.server.status()["counters"]["clients_cut_off"] == 1
        assert len(r.server.clients) == 1
        stuck.close()
        await reader.close()

    run(tmp_path, scenario)


def test_a_port_in_use_is_reported_down_and_retried(tmp_path: Path) -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]

    async def scenario(r: Rig) -> None:
        for _ in range(100):
            if r.server.state == "down":
                break
            await asyncio.sleep(0.01)
        assert r.server.state == "down"
        assert f"port 127.0.0.1:{port} is in use" in (r.server.reason or "")
        blocker.close()
        for _ in range(500):
            if r.server.state == "up":
                break
            await asyncio.sleep(0.01)
        assert r.server.state == "up"

    try:
        run(tmp_path, scenario, port=port)
    finally:
        blocker.close()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "::"])
def test_listening_off_loopback_needs_an_allow_list(host: str) -> None:
    from cidbridge.config import ConfigError, parse

    with pytest.raises(ConfigError) as error:
        parse(f'[ncid]\nenabled = true\nhost = "{host}"\n')
    assert "ncid.allowed_clients: required because host" in str(error.value)
    parse(f'[ncid]\nenabled = true\nhost = "{host}"\nallowed_clients = ["192.168.1.0/24"]\n')
