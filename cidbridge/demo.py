"""``cidbridge demo``: the real daemon, on a simulated modem instead of hardware.

The demo opens a pseudo-terminal, puts a :class:`~cidbridge.sim.modem.SimulatedModem`
on its far end, and runs the unchanged daemon with one line configured on the near
end.  The modem answers the daemon's AT initialisation and then, every few seconds,
rings and prints caller ID for a random caller.  Nothing in the pipeline knows.
"""

from __future__ import annotations

import random
import threading
from pathlib import Path

from cidbridge.config import CallsConfig, Config, LineConfig, ServerConfig, StoreConfig
from cidbridge.sim.callers import random_caller
from cidbridge.sim.modem import SimulatedModem
from cidbridge.sim.pty import PtyDevice


class DemoModem:
    """A simulated modem on a pty; a call every ``interval`` s (± a third) after the last ended."""

    def __init__(self, interval: float = 6.0, seed: int | None = None, quiet_after: float = 0.0) -> None:
        self.modem = SimulatedModem()
        self.device = PtyDevice(self.modem.receive)
        self.interval = interval
        #: Silence kept after each call, so the daemon sees its ringing stop (its ring gap).
        self.quiet_after = quiet_after
        self.rng = random.Random(seed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._calls, name="demo-calls", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _calls(self) -> None:
        while not self._stop.wait(self.quiet_after + self.interval * self.rng.uniform(0.67, 1.33)):
            if not self.modem.cid_enabled:
                continue  # the daemon has not initialised the modem yet
            caller = random_caller(self.rng)
            try:
                # The real cadence compressed; a blocked caller is hung up on like on a line.
                self.modem.play_call(self.device, caller, rings=self.rng.randint(2, 4), ring_every=2.0)
            except (OSError, TimeoutError):
                return

    def close(self) -> None:
        self._stop.set()
        self.device.close()


def demo_config(
    device_path: str,
    *,
    port: int,
    host: str,
    state_dir: Path,
    cors_origins: tuple[str, ...] = (),
    token: str | None = None,
) -> Config:
    """The configuration the demo runs with: one modem line on the pty.

    ``cors_origins`` and ``token`` are for a panel developed elsewhere (``next dev`` on
    ``http://localhost:3000``) connecting to the demo like it will to a real daemon.
    """
    return Config(
        server=ServerConfig(
            host=host, port=port, cors_origins=cors_origins, tokens={"default": token} if token else {}
        ),
        store=StoreConfig(path=state_dir / "demo-calls.sqlite"),
        calls=CallsConfig(ring_gap=4.0, region="KR"),
        lines=(LineConfig(name="demo", port=device_path, baudrate=115200, device="modem"),),
    )
