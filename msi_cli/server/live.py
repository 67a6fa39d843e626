"""The state and the platform token cache as the server sees them: parsed once and kept in
memory, re-read only when a file's identity or stamp changes, so that a change made with the CLI
while the server runs takes effect on the next request at the cost of two stat calls."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from msi_cli.core.model import State
from msi_cli.errors import StateError
from msi_cli.store.lazystate import LazyState
from msi_cli.store.statefile import StateFile
from msi_cli.store.tokencache import Snapshot


def _signature(path: str) -> tuple[object, ...] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_dev, st.st_mtime_ns, st.st_ctime_ns, st.st_size)


class LiveState:
    def __init__(self, sf: StateFile) -> None:
        self.sf = sf
        self._state_path = os.fspath(sf.path)
        self._tokens_path = os.fspath(sf.tokens_path)
        self._lock = threading.Lock()
        self._state_sig: tuple[object, ...] | None = None
        self._tokens_sig: tuple[object, ...] | None = None
        self.state: State | None = None
        self.tokens = Snapshot({})
        self.generation = 0  # bumped on every state reload

    @property
    def current(self) -> State:
        """The state as last read: the server reads it (`refresh`) before it serves."""
        state = self.state
        assert state is not None, "the state is read before the server serves"
        return state

    def stale(self) -> bool:
        """Has either file changed since it was last read? (Two stat calls, no reading.)"""
        return (
            self.state is None
            or _signature(self._state_path) != self._state_sig
            or _signature(self._tokens_path) != self._tokens_sig
        )

    def refresh(self) -> None:
        """Re-read what changed. Blocking (parsing, perhaps the lock to create a fresh state);
        the server calls it off the event loop. Raises StateError for a state that does not load."""
        with self._lock:
            sig = _signature(self._state_path)
            if self.state is None or sig != self._state_sig:
                state = self.sf.read()  # a missing file is created fresh first
                if isinstance(state, LazyState):
                    state.materialize()  # read from several threads: every collection built whole first
                if sig is None:
                    sig = _signature(self._state_path)
                self.state, self._state_sig = state, sig
                self.generation += 1
            sig = _signature(self._tokens_path)
            if sig != self._tokens_sig:
                self.tokens = _read_tokens(self.sf.tokens_path)
                self._tokens_sig = sig

    def tokens_changed(self) -> None:
        """The server itself just wrote the token cache: read it again on the next request (a
        file replaced twice within one clock tick could otherwise keep its stamp)."""
        self._tokens_sig = ("changed",)


def _read_tokens(path: Path) -> Snapshot:
    try:
        return Snapshot.read(path)
    except StateError:
        # unreadable (a folder, no permission): the server still answers what needs no cache,
        # and a request that must mint reports the error
        return Snapshot({})
