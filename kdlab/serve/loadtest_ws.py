"""The load test's browserless client: each session speaks Streamlit's websocket protocol itself.

What a browser tab does, minus the rendering (checked against Streamlit 1.67's server and front end):

* connect to ``ws://HOST/_stcore/stream`` with ``Sec-WebSocket-Protocol: streamlit`` (the front end's
  ``new WebSocket(url, ["streamlit", xsrf?, session?])``; the server only echoes the first entry);
* first ``BackMsg.rerun_script``: ``ClientState(page_name="Distill", page_script_hash="")``, as the front end
  sends the URL path on first load; later ones carry the page hash from ``navigation``/``new_session``
  and the query string the server last set (``page_info_changed``);
* read binary ``ForwardMsg`` frames: ``new_session`` starts a run (a full run, one without fragment ids,
  cancels the fragment timers, as the front end does), ``delta`` elements (the "Run" button's widget id and
  ``disabled`` flag, a markdown "Confusion matrices", ``exception``/error ``alert``), ``script_finished``,
  ``auto_rerun``/``stop_auto_rerun`` (fragment timers), ``page_not_found``;
* once a full run has finished with an enabled Run button, "click" it: rerun_script with
  ``WidgetState(id, trigger_value=True)``. The other widgets' values are not sent: the server keeps each
  widget's last value in the session (``SessionState._compact_state``), so the session's own settings apply;
* every ``auto_rerun(fragment_id, interval)``: a rerun_script with that ``fragment_id`` and
  ``is_auto_rerun=True`` every ``interval`` seconds, which is how the page notices a finished job.

No frame is ever a ``ref_hash`` one: we send no ``cached_message_hashes``, so the server sends every message
in full.

The core never imports streamlit (docs/ARCHITECTURE.md, tests/test_architecture.py), not even its generated protos,
so the few messages and fields used here are encoded and decoded by hand below, with the field numbers of
Streamlit 1.67's protos; tests/test_loadtest.py checks them against the installed ``streamlit.proto``.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import struct

PAGE = "Distill"
RUN_LABEL = "Run"
DONE_TEXT = "Confusion matrices"
ALERT_ERROR = 1  # Alert.Format.ERROR
# ForwardMsg.script_finished (ScriptFinishedStatus)
FINISHED_SUCCESSFULLY, FINISHED_WITH_COMPILE_ERROR = 0, 1


# -- a minimal protobuf wire codec (https://protobuf.dev/programming-guides/encoding/) ----------------------

def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, value: bytes | str | bool) -> bytes:
    """One field: a bool as a varint, a str/bytes (or an encoded sub-message) as length-delimited."""
    if isinstance(value, bool):
        return _varint(number << 3) + _varint(int(value))
    data = value.encode() if isinstance(value, str) else value
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def rerun_script(query: str, page_hash: str, page_name: str, trigger_ids: list[str] = (),
                 fragment_id: str = "") -> bytes:
    """BackMsg{rerun_script(11): ClientState{query_string 1, widget_states 2, page_script_hash 3, page_name 4,
    fragment_id 5, is_auto_rerun 6}}; WidgetStates{widgets 1}; WidgetState{id 1, trigger_value 2}."""
    widgets = b"".join(_field(1, _field(1, wid) + _field(2, True)) for wid in trigger_ids)
    state = _field(1, query) + _field(2, widgets)
    state += _field(3, page_hash) if page_hash else _field(4, page_name)
    if fragment_id:
        state += _field(5, fragment_id) + _field(6, True)
    return _field(11, state)


def parse(buf: bytes) -> dict[int, list]:
    """Field number -> values: int for varints, bytes for length-delimited, bytes for fixed32/64."""
    fields: dict[int, list] = {}
    i, n = 0, len(buf)
    while i < n:
        key, i = _read_varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _read_varint(buf, i)
        elif wire == 2:
            size, i = _read_varint(buf, i)
            value, i = buf[i:i + size], i + size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, i = buf[i:i + size], i + size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        fields.setdefault(number, []).append(value)
    return fields


def _read_varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = buf[i]
        i += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, i
        shift += 7


def _one(fields: dict[int, list], number: int, default=None):
    values = fields.get(number)
    return values[-1] if values else default


def _text(fields: dict[int, list], number: int) -> str:
    return _one(fields, number, b"").decode("utf-8", "replace")


def _sub(fields: dict[int, list], number: int) -> dict[int, list] | None:
    value = _one(fields, number)
    return None if value is None else parse(value)


@dataclass
class _Session:
    ws: object
    page_hash: str = ""
    query: str = ""
    run_button: tuple[str, bool] | None = None  # (widget id, disabled) as last drawn
    clicked: bool = False
    full_runs_finished: int = 0
    timers: dict[str, asyncio.Task] = field(default_factory=dict)

    async def send_rerun(self, trigger_ids: list[str] = (), fragment_id: str = "") -> None:
        await self.ws.send(rerun_script(self.query, self.page_hash, PAGE, trigger_ids, fragment_id))

    def schedule(self, fragment_id: str, interval: float) -> None:
        self.cancel(fragment_id)

        async def tick() -> None:
            while True:
                await asyncio.sleep(interval)
                await self.send_rerun(fragment_id=fragment_id)

        self.timers[fragment_id] = asyncio.create_task(tick())

    def cancel(self, *fragment_ids: str) -> None:
        for fid in fragment_ids or list(self.timers):
            if (task := self.timers.pop(fid, None)) is not None:
                task.cancel()


def _element_error(el: dict[int, list]) -> str:
    """Element{exception 8: Exception{type 1, message 2, is_warning 5}, alert 30: Alert{body 1, format 2}}."""
    if (exc := _sub(el, 8)) is not None and not _one(exc, 5, 0):
        return f"{_text(exc, 1)}: {_text(exc, 2)}"[:200]
    if (alert := _sub(el, 30)) is not None and _one(alert, 2, 0) == ALERT_ERROR:
        return _text(alert, 1)[:200]
    return ""


async def one_session(url: str, timeout_s: float) -> tuple[float | None, str]:
    """(seconds from connect to the results heading, "") on success, (None, error) otherwise."""
    import websockets

    ws_url = url.replace("http://", "ws://", 1) + "/_stcore/stream"
    t0 = time.monotonic()
    session = None
    try:
        async with asyncio.timeout(timeout_s):
            async with websockets.connect(ws_url, subprotocols=["streamlit"], max_size=None,
                                          open_timeout=timeout_s, ping_interval=None) as ws:
                session = _Session(ws)
                await session.send_rerun()
                return await _read(session, t0)
    except TimeoutError:
        return None, f"TimeoutError: no results within {timeout_s:.0f} s"
    except Exception as exc:  # a crash or a closed socket: this session failed, the others go on
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
    finally:
        if session is not None:
            session.cancel()


async def _read(s: _Session, t0: float) -> tuple[float | None, str]:
    """ForwardMsg field numbers: metadata 2 (run 6: fragment_ids 2), new_session 4 (page_script_hash 9),
    delta 5 (new_element 3), script_finished 6, page_info_changed 12 (query_string 1), page_not_found 15
    (page_name 1), auto_rerun 21 (interval 1 float, fragment_id 2), navigation 23 (page_script_hash 4),
    stop_auto_rerun 28 (fragment_ids 1). Element: button 19 (id 1, label 2, disabled 8), markdown 29 (body 1)."""
    async for frame in s.ws:
        if isinstance(frame, str):
            continue
        msg = parse(frame)
        if (new := _sub(msg, 4)) is not None:
            if page_hash := _text(new, 9):
                s.page_hash = page_hash
            run = _sub(_sub(msg, 2) or {}, 6) or {}
            if not run.get(2):  # a full run, no fragment ids: the front end drops its fragment timers
                s.cancel()
                s.run_button = None
        elif (nav := _sub(msg, 23)) is not None:
            if page_hash := _text(nav, 4):
                s.page_hash = page_hash
        elif (info := _sub(msg, 12)) is not None:
            s.query = _text(info, 1)
        elif (missing := _sub(msg, 15)) is not None:
            return None, f"page not found: {_text(missing, 1)!r}"
        elif (auto := _sub(msg, 21)) is not None:
            interval = struct.unpack("<f", _one(auto, 1, b"\0\0\0\0"))[0]
            if fragment_id := _text(auto, 2):
                s.schedule(fragment_id, max(0.05, interval))
        elif (stop := _sub(msg, 28)) is not None:
            for fragment_id in stop.get(1, []):
                s.cancel(fragment_id.decode())
        elif (delta := _sub(msg, 5)) is not None and (el := _sub(delta, 3)) is not None:
            if error := _element_error(el):
                return None, error
            if (button := _sub(el, 19)) is not None and _text(button, 2) == RUN_LABEL:
                s.run_button = (_text(button, 1), bool(_one(button, 8, 0)))
            elif (md := _sub(el, 29)) is not None and s.clicked and DONE_TEXT in _text(md, 1):
                return time.monotonic() - t0, ""
        elif (status := _one(msg, 6)) is not None:
            if status == FINISHED_WITH_COMPILE_ERROR:
                return None, "script finished with a compile error"
            if status == FINISHED_SUCCESSFULLY and not s.clicked and s.run_button and not s.run_button[1]:
                s.clicked = True
                await s.send_rerun([s.run_button[0]])
    return None, "the server closed the connection"


async def drive(url: str, sessions: int, timeout_s: float) -> list[tuple[float | None, str]]:
    return await asyncio.gather(*(one_session(url, timeout_s) for _ in range(sessions)))
