"""A real Jupyter kernel driven with jupyter_client, the way a notebook front end drives it.

nbclient waits for each cell before sending the next; a person pressing Run
All does not: every cell is queued at once. ``send`` queues a cell and
returns at once; ``reply``/``wait_for_output`` wait on what the kernel says
for that cell (its iopub messages and its shell reply, matched by the
request's msg_id), never on time.
"""

from __future__ import annotations

import os
import pathlib
import queue
import textwrap
import time

from jupyter_client.manager import start_new_kernel

ROOT = pathlib.Path(__file__).resolve().parent.parent


class Cell:
    def __init__(self, msg_id: str):
        self.msg_id = msg_id
        self.stream: list[str] = []
        self.errors: list[dict] = []
        self.reply: dict | None = None
        self.idle = False

    @property
    def text(self) -> str:
        return "".join(self.stream)


class KernelSession:
    def __init__(self, cwd: str | None = None):
        env = dict(os.environ)
        # The kernel imports pipenb from this checkout, wherever an editable install points.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        self.km, self.kc = start_new_kernel(kernel_name="python3", env=env, cwd=cwd)
        self.cells: dict[str, Cell] = {}
        self.other: list[dict] = []  # iopub messages of no cell of ours (comm handlers, ...)

    # -- sending ------------------------------------------------------------------------
    def send(self, code: str) -> Cell:
        """Queue a cell; do not wait for it (as Run All does)."""
        msg_id = self.kc.execute(textwrap.dedent(code).strip(), store_history=True)
        cell = self.cells[msg_id] = Cell(msg_id)
        return cell

    def comm(self, comm_id: str, data: dict) -> None:
        """What a browser sends when a widget is clicked (on the shell channel)."""
        self.kc.shell_channel.send(self.kc.session.msg("comm_msg", {"comm_id": comm_id, "data": data}))

    def click(self, model_id: str) -> None:
        self.comm(model_id, {"method": "custom", "content": {"event": "click"}})

    def interrupt(self) -> None:
        self.km.interrupt_kernel()

    # -- waiting ------------------------------------------------------------------------
    def _pump(self, deadline: float) -> bool:
        """Take the next message from iopub or shell; False once the deadline passed."""
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        got = False
        for channel in (self.kc.iopub_channel, self.kc.shell_channel):
            try:
                msg = channel.get_msg(timeout=0 if got else min(left, 0.05))
            except queue.Empty:
                continue
            got = True
            self._take(msg, channel is self.kc.shell_channel)
        return True

    def _take(self, msg: dict, shell: bool) -> None:
        cell = self.cells.get(msg.get("parent_header", {}).get("msg_id"))
        if cell is None:
            self.other.append(msg)
            return
        kind, content = msg["msg_type"], msg["content"]
        if shell:
            cell.reply = content
        elif kind == "stream":
            cell.stream.append(content["text"])
        elif kind == "error":
            cell.errors.append(content)
        elif kind == "status" and content.get("execution_state") == "idle":
            cell.idle = True

    def wait(self, cond, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if not self._pump(deadline):
                raise AssertionError(f"kernel: {what}: not seen within {timeout} s")

    def reply(self, cell: Cell, timeout: float = 60) -> dict:
        """The cell's shell reply (and its output complete: the kernel went idle for it)."""
        self.wait(lambda: cell.reply is not None and cell.idle, timeout, f"reply to {cell.msg_id}")
        return cell.reply

    def wait_for_output(self, cell: Cell, text: str, timeout: float = 30) -> None:
        self.wait(lambda: text in cell.text or cell.reply is not None, timeout, f"output {text!r}")
        assert text in cell.text, f"the cell ended without printing {text!r}: {cell.text!r} {cell.errors}"

    def run(self, code: str, timeout: float = 60) -> str:
        """Send a cell, wait for it, fail on an error; its printed text."""
        cell = self.send(code)
        reply = self.reply(cell, timeout)
        assert reply["status"] == "ok", f"{cell.text}\n" + "\n".join(
            "\n".join(e["traceback"]) for e in cell.errors)
        return cell.text.strip()

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)
