"""MIDI bytes to events: a decoder robust to whatever a port sends (running status,
truncated messages, stray data bytes, SysEx, realtime bytes), assembling 14-bit CC
pairs and NRPN per channel; relative encoders' detents; the surface's counters."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields

__all__ = ["Counters", "Decoder", "Event", "relative_delta"]


@dataclass
class Counters:
    """What the surface saw and did; read by views, tests and the benchmark."""

    messages: int = 0  # rtmidi callbacks
    events: int = 0  # channel messages decoded
    junk: int = 0  # malformed: truncated, data without status, bytes out of range
    sysex: int = 0
    system: int = 0  # realtime and system common bytes (clock, song position...)
    unmapped: int = 0  # well-formed, but no control of the map sends it
    rate_limited: int = 0  # engine commands refused by the token bucket
    posted: int = 0  # commands posted to the session/engine
    dropped: int = 0  # refused by the session's own queue
    chain_ops: int = 0  # "bypass" commands posted to the session
    param_sets: int = 0  # "parameter" commands posted to the session
    param_errors: int = 0  # no such chain or plugin (what a chain refuses, the session reports)
    pickup_waiting: int = 0  # absolute moves ignored until the control reaches the value
    led_sent: int = 0
    reconnects: int = 0
    errors: int = 0  # exceptions caught on the MIDI thread (should stay 0)

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# Events: (kind, channel 0-15, number, value). Values: note velocity (0 = off),
# 7-bit CC, 14-bit for cc14/nrpn/pitchbend; "nrpn_step" carries +1/-1.
Event = tuple[str, int, int, int]

_DATA_BYTES = {0x80: 2, 0x90: 2, 0xA0: 2, 0xB0: 2, 0xC0: 1, 0xD0: 1, 0xE0: 2}
_SYSTEM_COMMON_DATA = {0xF1: 1, 0xF2: 2, 0xF3: 1, 0xF6: 0}


class Decoder:
    """MIDI bytes -> events, with 14-bit CC pairs and NRPN assembled per channel.

    Robust to what arrives from a port: several messages (or running status)
    in one buffer, truncated messages, data bytes without a status, values out
    of range, SysEx, realtime and system common bytes; each is counted, none
    raises.

    14-bit pairs (``cc14``: MSB on CC n, LSB on n+32) and NRPN (CC 99/98 select
    the parameter, 6/38 carry the value, 96/97 step it) are decoded only on the
    channels and numbers the map binds that way, so a controller whose CC 6 is
    a plain knob keeps it. A value's MSB alone gives ``msb << 7 | msb`` (the
    7-bit value scaled exactly onto 14 bits: 127 -> 16383), refined when the LSB
    follows, so 7-bit senders of "14-bit" messages reach the whole range.
    """

    def __init__(
        self,
        cc14: Iterable[tuple[int | None, int]] = (),
        nrpn_channels: Iterable[int | None] = (),
        counters: Counters | None = None,
    ) -> None:
        self.counters = counters if counters is not None else Counters()
        self._cc14_msb: dict[tuple[int | None, int], int] = {}
        for ch, n in cc14:
            self._cc14_msb[(ch, n)] = 0
        self._cc14_any = any(ch is None for ch, _ in self._cc14_msb)
        self._nrpn_all = any(ch is None for ch in nrpn_channels)
        self._nrpn = {ch for ch in nrpn_channels if ch is not None}
        self._param = [-1] * 16  # selected NRPN number per channel (-1: none, or an RPN)
        self._param_msb = [0] * 16
        self._data_msb = [0] * 16
        self._lsb: dict[tuple[int, int], int] = {}

    def feed(self, data: Sequence[int]) -> list[Event]:
        """Decode one buffer from the port."""
        out: list[Event] = []
        c = self.counters
        n = len(data)
        i = 0
        status = 0
        while i < n:
            b = data[i]
            if not isinstance(b, int) or b < 0 or b > 0xFF:
                c.junk += 1
                return out
            if b >= 0xF8:  # realtime may sit anywhere, even inside a message
                c.system += 1
                i += 1
                continue
            if b == 0xF0:
                c.sysex += 1
                end = i + 1
                while end < n and data[end] != 0xF7:
                    end += 1
                i = end + 1
                status = 0
                continue
            if b >= 0xF0:
                c.system += 1
                i += 1 + _SYSTEM_COMMON_DATA.get(b, 0)
                status = 0
                continue
            if b & 0x80:
                status = b
                i += 1
            elif status == 0:
                c.junk += 1  # data bytes with no status before them: one piece of junk
                while i < n and _is_data(data[i]):
                    i += 1
                continue
            need = _DATA_BYTES[status & 0xF0]
            body = data[i : i + need]
            if len(body) < need or not all(_is_data(d) for d in body):
                c.junk += 1  # truncated, or a status byte (or worse) where data belongs
                while i < n and _is_data(data[i]):
                    i += 1
                if i < n and not (isinstance(data[i], int) and 0 <= data[i] <= 0xFF):
                    return out
                status = 0
                continue
            i += need
            self._message(status, body, out)
        return out

    def _message(self, status: int, body: Sequence[int], out: list[Event]) -> None:
        kind, ch = status & 0xF0, status & 0x0F
        self.counters.events += 1
        if kind == 0x90:
            out.append(("note", ch, body[0], body[1]))
        elif kind == 0x80:
            out.append(("note", ch, body[0], 0))
        elif kind == 0xB0:
            self._cc(ch, body[0], body[1], out)
        elif kind == 0xE0:
            out.append(("pitchbend", ch, 0, body[0] | (body[1] << 7)))
        else:  # aftertouch, program change, channel pressure: nothing binds them
            self.counters.unmapped += 1

    def _cc(self, ch: int, num: int, value: int, out: list[Event]) -> None:
        if (ch in self._nrpn or self._nrpn_all) and num in (99, 98, 101, 100, 6, 38, 96, 97):
            self._nrpn_cc(ch, num, value, out)
            return
        if self._cc14_msb:
            if num < 32:
                key = (ch, num) if (ch, num) in self._cc14_msb else (None, num)
                if key in self._cc14_msb:
                    self._cc14_msb[key] = value
                    out.append(("cc14", ch, num, (value << 7) | value))
                    return
            elif num < 64:
                key = (ch, num - 32) if (ch, num - 32) in self._cc14_msb else (None, num - 32)
                if key in self._cc14_msb:
                    out.append(("cc14", ch, num - 32, (self._cc14_msb[key] << 7) | value))
                    return
        out.append(("cc", ch, num, value))

    def _nrpn_cc(self, ch: int, num: int, value: int, out: list[Event]) -> None:
        if num == 99:
            self._param_msb[ch] = value
            self._param[ch] = -1  # complete once the LSB (98) arrives
        elif num == 98:
            self._param[ch] = (self._param_msb[ch] << 7) | value
            if self._param_msb[ch] == 127 and value == 127:  # the "null" parameter
                self._param[ch] = -1
        elif num in (101, 100):  # an RPN selection deselects any NRPN
            self._param[ch] = -1
        elif self._param[ch] < 0:
            self.counters.unmapped += 1  # data entry with no NRPN selected
        elif num == 6:
            self._data_msb[ch] = value
            out.append(("nrpn", ch, self._param[ch], (value << 7) | value))
        elif num == 38:
            out.append(("nrpn", ch, self._param[ch], (self._data_msb[ch] << 7) | value))
        else:  # 96 increment, 97 decrement
            out.append(("nrpn_step", ch, self._param[ch], 1 if num == 96 else -1))


def _is_data(b: object) -> bool:
    return isinstance(b, int) and 0 <= b <= 0x7F


def relative_delta(mode: str, value: int) -> int:
    """Detents encoded in a 7-bit relative encoder value."""
    if mode == "relative-twos":  # 1..63 up, 127..64 down (-1..-64)
        return value - 128 if value >= 64 else value
    if mode == "relative-binary-offset":  # 64 is no move: 65 = +1, 63 = -1
        return value - 64
    if mode == "relative-sign-magnitude":  # bit 6 is the sign: 1 = +1, 65 = -1
        return -(value & 0x3F) if value & 0x40 else value & 0x3F
    return 0
