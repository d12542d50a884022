"""The flag worker: the live detectors, in a process of their own (see ``earmark.live.flags``).

``python -m earmark.live.flags_worker CONN_FD``. Messages (pickled over the socket):

- ``("init", profile, [(sample_rate, channels), ...])`` -> ``("ok",)``
- ``("tick", [(path, reset, rows | None, before_rows | None), ...])`` ->
  (``before_rows`` may be the BEFORE path's index: its rows in the same message)
  ``("flags", changed, flags)``: each path's rows go to its Detector exactly as the
  in-process code fed them (BEFORE rows first), flags as ``session.flags`` dicts
- ``("finish",)`` -> ``("flags", True, final_flags)``
- ``("quit",)``
"""

from __future__ import annotations

import sys
from multiprocessing.connection import Connection
from typing import Any

from earmark.engine.childproc import ignore_stop_signals
from earmark.meters.detectors import Detector
from earmark.meters.flags import session_key


class FlagWorker:
    """One Detector per path, and the session's flag list built from them."""

    def __init__(self, profile: Any, banks: list[tuple[int, int]]) -> None:
        self.profile = profile
        self.banks = banks
        self.detectors = [Detector(profile, sr, ch) for sr, ch in banks]

    def tick(self, work: list[tuple]) -> tuple[bool, list[dict]]:
        changed = False
        sent = {i: rows for i, _, rows, _ in work}
        for i, reset, rows, before_rows in work:
            if isinstance(before_rows, int):  # the BEFORE path's rows of this same tick
                before_rows = sent.get(before_rows)
            if reset:
                sr, ch = self.banks[i]
                self.detectors[i] = Detector(self.profile, sr, ch)
                changed = True
            det = self.detectors[i]
            if before_rows is not None:
                det.add_before(before_rows)
            if rows is not None:
                changed |= bool(det.update(rows))
        return changed, (self.session_flags(final=False) if changed else [])

    def finish(self) -> list[dict]:
        for det in self.detectors:
            det.finish()
        return self.session_flags(final=True)

    def session_flags(self, final: bool) -> list[dict]:
        out: list[dict] = []
        for i, det in enumerate(self.detectors):
            open_now = set() if final else {session_key(f.to_dict()) for f in det.open_flags()}
            for flag in det.flags():
                doc = flag.to_dict()
                out.append({**doc, "path": i, "open": session_key(doc) in open_now})
        out.sort(key=lambda f: (f["start_s"], f["path"]))
        return out


def main(conn_fd: int) -> None:
    """Serve one session until it says quit or goes away."""
    # The session asks for the final flags before it stops this worker.
    ignore_stop_signals()
    conn = Connection(conn_fd)
    worker: FlagWorker | None = None
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        kind = message[0]
        if kind == "quit":
            return
        try:
            if kind == "init":
                worker = FlagWorker(message[1], message[2])
                conn.send(("ok",))
            elif kind == "tick":
                assert worker is not None
                changed, flags = worker.tick(message[1])
                conn.send(("flags", changed, flags))
            elif kind == "finish":
                assert worker is not None
                conn.send(("flags", True, worker.finish()))
        except Exception as exc:
            conn.send(("error", exc))


if __name__ == "__main__":
    main(int(sys.argv[1]))
