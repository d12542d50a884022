"""The session log and snapshots of a live session (a LiveSession service).

While ``earmark run`` / ``earmark demo`` stream, :class:`SessionRecorder`
appends every path's meters at about 10 Hz, every marker and every flag (as
it opens, grows and closes) to the store, and answers the ``snapshot`` session
command: ``session.call("snapshot", label, note)`` returns the id once the
snapshot is committed. Keys, the dashboard, the MIDI surface and ``earmark
snapshot take`` (through the control socket) all send that one command.

The recorder's tick only hands rows to the store's writer thread
(:class:`earmark.store.StoreWriter`); the disk is never touched on the session
thread except while a snapshot waits for its commit, and never on the audio
thread.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from earmark.meters.flags import session_key
from earmark.store import StoreWriter, dumps, snapshots

__all__ = ["SessionRecorder", "attach", "record_live"]

SNAPSHOT_TIMEOUT_S = 3.0
END_LABEL = "session end"


class SessionRecorder:
    """Session log + snapshot command for a LiveSession.

    Args:
        writer: the store writer (default: a writer on ``config.store_file()``).
        kind: what streams ("run", "demo"), recorded with the session and each snapshot.
        snapshot_timeout_s: how long a snapshot waits for its commit before it is
            reported as pending (kept in memory, written when possible).
        end_snapshot: take a snapshot labelled "session end" when the session stops
            (what ``earmark history`` follows when no snapshot is labelled "final").
    """

    tick_hz = 10.0

    def __init__(
        self,
        writer: StoreWriter | None = None,
        *,
        kind: str = "run",
        snapshot_timeout_s: float = SNAPSHOT_TIMEOUT_S,
        end_snapshot: bool = True,
        clip_seconds: float = 0.0,
    ) -> None:
        self.writer = writer or StoreWriter()
        self.clip_seconds = float(clip_seconds)
        self.kind = kind
        self.end_snapshot = end_snapshot
        self.snapshot_timeout_s = float(snapshot_timeout_s)
        self._last_state: Any = None
        self._markers_seen = 0
        self._flags_seen: dict[str, str] = {}
        self.rows_logged = 0

    def attach(self, session: Any) -> SessionRecorder:
        """Register the ``snapshot`` command and add this service to ``session``."""
        session.handle("snapshot", self.snapshot)
        session.add_service(self, "session log")
        return self

    # -- service ------------------------------------------------------------------------

    def start(self, session: Any) -> None:
        """Open the session's row and start the writer thread."""
        if self.writer.on_status is None:
            self.writer.on_status = lambda text: session.note("store", text)
        if self.writer.pace is None:
            self.writer.pace = session.engine.after_callback
        state = session.state()
        driver = session.driver
        self.writer.start()
        self.writer.begin_session(
            session.name,
            self.kind,
            sample_rate=int(state.sample_rate),
            block_size=int(driver.blocksize) if driver is not None else None,
            meta={
                "paths": [p.name for p in state.paths],
                "a": state.a,
                "b": state.b,
                "profile": snapshots.profile_state(session.profile),
            },
        )

    def tick(self, session: Any, state: Any) -> None:
        """Hand the latest meters, new markers and new or changed flags to the writer."""
        if state is not None and state is not self._last_state:
            self._last_state = state
            now = time.time()
            rows = []
            for i, p in enumerate(state.paths):
                r = p.readings
                rows.append(
                    (
                        now,
                        state.position_s,
                        i,
                        r.momentary_lufs,
                        r.short_term_lufs,
                        r.integrated_lufs,
                        r.recent_true_peak_dbtp,
                        r.psr_db,
                        r.loudness_range_lu,
                        r.plr_db,
                        r.correlation,
                    )
                )
            self.writer.log(rows)
            self.rows_logged += len(rows)
        markers = session.markers
        while self._markers_seen < len(markers):
            self.writer.marker(markers[self._markers_seen])
            self._markers_seen += 1
        for flag in map(snapshots.flag_dict, list(session.flags)):
            key, text = session_key(flag), dumps(flag)
            if self._flags_seen.get(key) != text:
                self._flags_seen[key] = text
                self.writer.flag(flag)

    def stop(self, session: Any) -> None:
        """Log what is left, snapshot the end, close the session row, write everything and
        stop the writer."""
        self.tick(session, None)
        if self.end_snapshot and session.state().callbacks > 0:
            doc = snapshots.from_session(session, label=END_LABEL, kind=self.kind)
            try:
                self.writer.take_snapshot(doc, timeout=self.snapshot_timeout_s)
            except Exception as exc:  # kept by the writer (rescued at stop if need be)
                session.note("store", f"the end-of-session snapshot is not stored yet: {exc}")
        self.writer.end_session()
        left = self.writer.stop()
        if left:
            session.note("store", f"{left} item(s) could not be written to {self.writer.path}")

    # -- the snapshot command -------------------------------------------------------------

    def snapshot(self, session: Any, label: str | None = None, note: str | None = None) -> int:
        """Take a snapshot; return its id once committed.

        Raises :class:`earmark.store.SnapshotPendingError` when the store cannot be
        written now: the snapshot is kept and written when possible.
        """
        doc = snapshots.from_session(session, label=label, note=note, kind=self.kind)
        clip = self._clip(session)
        snapshot_id = self.writer.take_snapshot(doc, clip=clip, timeout=self.snapshot_timeout_s)
        session.note(
            "snapshot", f"snapshot {snapshot_id} stored" + (f" ({label})" if label else "")
        )
        return snapshot_id

    def _clip(self, session: Any) -> tuple[str, bytes, int, float] | None:
        """The last ``clip_seconds`` of the audible path (A or B, before the monitor
        section), as FLAC; None when clips are off or nothing has played."""
        if self.clip_seconds <= 0.0:
            return None
        engine = session.engine
        frames = min(int(round(self.clip_seconds * engine.sample_rate)), engine.tap_frames)
        tap = np.zeros((frames, 4), dtype=np.float32)
        got = engine.read_tap(tap)
        if got <= 0:
            return None
        cols = slice(2, 4) if session.state().audible == "B" else slice(0, 2)
        return snapshots.encode_clip(tap[frames - got :, cols], engine.sample_rate)


def attach(
    session: Any, kind: str = "run", writer: StoreWriter | None = None, clip_seconds: float = 0.0
) -> SessionRecorder:
    """Record ``session``: the session log, and the ``snapshot`` command."""
    return SessionRecorder(writer, kind=kind, clip_seconds=clip_seconds).attach(session)


def record_live(session: Any, kind: str, clip_seconds: float = 0.0) -> SessionRecorder:
    """What `earmark run`/`demo` add to a session: the session log, the ``snapshot``
    command (with the last ``clip_seconds`` of audio, if > 0) and the control socket
    (`earmark snapshot take`)."""
    from earmark.live import control

    recorder = attach(session, kind, clip_seconds=clip_seconds)
    control.attach(session)
    return recorder
