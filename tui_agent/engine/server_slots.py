"""Session states on a llama-server, in the files it saves its slot to (``--slot-save-path``).

llama-server keeps recent prompts' caches in its own memory, which a restart loses. Started with
``--slot-save-path DIR`` it also writes a slot's KV cache to a file there and reads it back on
request. llamachat asks it to save the slot after a turn (the worker, once idle) under a name
made from the session's id, and to restore that file before the session's next prompt when the
slot may hold something else (another session ran, or this is a new llamachat process). The
server compares the restored tokens with the prompt's, as for its own cache, so a stale or
foreign file costs time, never a wrong answer. Only a one-slot server is driven: with several,
which slot a request lands in is the server's choice, and its own cache serves it.
"""

from __future__ import annotations

import logging
import time

from tui_agent.engine.remote import RemoteError, RemoteInfo, RemoteServer

log = logging.getLogger(__name__)
SLOT = 0


class ServerSlotStates:
    def __init__(self, server: RemoteServer, info: RemoteInfo) -> None:
        self.server = server
        self.usable = info.kind == "llama-server" and info.slots == 1
        self._in_slot: str | None = None  # the session the slot holds, None: unknown
        self._notices: list[str] = []

    @staticmethod
    def filename(session: str) -> str:
        return f"llamachat-{session}.bin"

    def save(self, session: str) -> None:
        if not self.usable or not session or self._in_slot != session:
            return
        status, answer = self._act("save", session)
        if status not in (200, 501):
            log.info("llama-server did not save the slot (%s): %s", status, answer)

    def restore(self, session: str) -> tuple[int, float]:
        """Put the session's saved state into the slot before its prompt, when the slot may hold
        another: (tokens restored, seconds); (0, 0) when there was nothing to restore."""
        if not self.usable or not session or self._in_slot == session:
            return 0, 0.0
        self._in_slot = session
        started = time.perf_counter()
        status, answer = self._act("restore", session)
        if status != 200 or not isinstance(answer, dict):
            return 0, 0.0  # no file yet, or one the server refused: the prompt is read
        return int(answer.get("n_restored") or 0), time.perf_counter() - started

    def take_notices(self) -> list[str]:
        notices, self._notices = self._notices, []
        return notices

    def _act(self, action: str, session: str) -> tuple[int, object]:
        try:
            status, answer = self.server.slot_action(SLOT, action, self.filename(session))
        except RemoteError as exc:  # a state is a cache: the chat goes on without it
            log.info("llama-server slot %s failed: %s", action, exc)
            return 0, None
        if status == 501:  # started without --slot-save-path: said once, not asked again
            self.usable = False
            self._notices.append(
                f"{self.server.where} keeps recent prompts in its own memory only: started with"
                " --slot-save-path DIR, llama-server saves each session's state there, and a"
                " session resumed after the server restarts is not read again"
            )
        return status, answer
