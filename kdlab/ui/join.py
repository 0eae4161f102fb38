"""Join the class: the address students open, and its QR code, made on this machine (segno: pure Python, no web
service, nothing leaves the server).

The server tells the app its classroom address in the environment variable ``KDLAB_PUBLIC_URL``, which
``kdlab serve`` sets (kdlab.ui.serve): ``--public-url`` when given (behind a proxy, or a host name), else
``http://<this machine's LAN address>:<port>/`` when it listens beyond loopback (``--host 0.0.0.0``). Without
it (a plain ``streamlit run app.py``) the app works the address out from Streamlit's own ``server.address``
and ``server.port``. On loopback, the default, no other machine can connect: the panel says so, and how to
start the server for a class.
"""
from __future__ import annotations

import functools
import ipaddress
import os
import socket
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlsplit

import streamlit as st

from kdlab.ui.i18n import N_, t

PUBLIC_URL_ENV = "KDLAB_PUBLIC_URL"
# A UDP socket "connected" to an address of a private range picks the interface this machine would send from,
# without sending a packet: that interface's address is the one the students' devices on the LAN can reach.
ROUTE_PROBE = ("10.255.255.255", 1)
WILDCARDS = ("", "0.0.0.0", "::")
FOR_A_CLASS = N_("For a class, start it with `kdlab serve --host 0.0.0.0` (every network interface: the students' "
               "devices on the same network can then open it, and this panel shows the address and its QR code), "
               "or add `--public-url https://…` when it is reached through a proxy or a name.")
QR_WIDTH = {False: 200, True: 380}  # pixels: a phone reads 200 from a desk; 380 from the back of a projected room


@dataclass(frozen=True)
class Address:
    """Where students open the app: ``url``, or None with ``note`` saying why there is none."""

    url: str | None
    note: str = ""


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: whatever it resolves to, the user chose it for others to use
        return False


def lan_address(probe: tuple[str, int] = ROUTE_PROBE) -> str | None:
    """This machine's address on its network (IPv4), or None when it has none but loopback."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(probe)  # UDP: no packet is sent, only a route chosen
            found = s.getsockname()[0]
        if not is_loopback(found) and found not in WILDCARDS:
            return found
    except OSError:  # no route at all (no network)
        pass
    return next(iter(_interface_addresses()), None)


def _interface_addresses() -> list[str]:
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
    except OSError:
        return []
    return [a for a in dict.fromkeys(info[4][0] for info in infos) if not is_loopback(a)]


def check_public_url(url: str) -> str:
    """``url`` if students can open it (http or https with a host); ValueError saying what is wrong."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(t("a public URL must look like http://host:port/ or https://name/, got {url}", url=repr(url)))
    return url.strip()


def classroom_url(host: str, port: int, public_url: str | None = None,
                  lan: Callable[[], str | None] = lan_address, path: str = "/") -> Address:
    """The address students open for a server bound to ``host``:``port`` (the pure decision; ``lan`` finds
    this machine's network address for a wildcard bind)."""
    if public_url:
        return Address(check_public_url(public_url), t("the address this server was given"))
    if is_loopback(host):
        return Address(None, t("This server listens on {host} only: no other machine can open it. {how}", host=host,
                               how=t(FOR_A_CLASS)))
    if host in WILDCARDS:
        found = lan()
        if found is None:
            return Address(None, t("This server listens on every interface, but this machine has no network "
                                   "address besides loopback. Connect it to the class's network, or pass "
                                   "`kdlab serve --public-url …`."))
        host = found
    shown = f"[{host}]" if ":" in host else host  # an IPv6 address in a URL
    return Address(f"http://{shown}:{port}{path}", t("this machine's address on its network"))


def app_address() -> Address:
    """The running app's classroom address: ``KDLAB_PUBLIC_URL`` if the server set it, else worked out from
    Streamlit's own bind address and port."""
    if given := os.environ.get(PUBLIC_URL_ENV, "").strip():
        try:
            return Address(check_public_url(given), t("set by the server ({variable})", variable=PUBLIC_URL_ENV))
        except ValueError as exc:
            return Address(None, t("{variable} is not usable: {problem}", variable=PUBLIC_URL_ENV, problem=exc))
    base = (st.get_option("server.baseUrlPath") or "").strip("/")
    return classroom_url(str(st.get_option("server.address") or ""), int(st.get_option("server.port")),
                         path=f"/{base}/" if base else "/")


@functools.lru_cache(maxsize=8)
def qr_svg(url: str) -> str:
    """The QR code of exactly ``url`` as an SVG (black on white with its quiet zone, so it also reads on a dark
    theme), scalable to any size on a projector."""
    import io

    out = io.BytesIO()
    qr_code(url).save(out, kind="svg", border=4, dark="#000000", light="#ffffff", xmldecl=False, omitsize=True)
    return out.getvalue().decode("utf-8")


def qr_code(url: str):
    """The segno QR code of ``url``: at least medium error correction (raised where the same size allows), so a
    dim projector or a phone at an angle still reads it."""
    import segno  # ~0.1 s to import: only when a code is drawn

    return segno.make_qr(url, error="m", encoding="utf-8")


# -- drawing ----------------------------------------------------------------------------------------------

def join_panel(big: bool = False) -> None:
    """The home page's "Join the class": the address and its QR code, or why there is none."""
    address = app_address()
    st.subheader(t("Join the class"))
    if address.url is None:
        st.info(address.note, icon=":material/lan:")
        return
    code, text = st.columns([1, 2], vertical_alignment="center")
    _code(address.url, big, code)
    if big:  # the projector's view: an address large enough to type from the back of the room
        text.markdown(f"### {address.url}")
        text.markdown(t("Open this address in a browser, or scan the code with a phone's camera."))
    else:
        text.markdown(t("Open **{url}** in a browser, or scan the code with a phone's camera.", url=address.url))
    text.caption(t("Every device on the same network as this server can join; each browser gets its own "
                   "session, and runs wait their turn on the server's workers."))


def join_popover(url: str) -> None:
    """Presenter mode, beside every page's title: a small button that opens the address and its code."""
    with st.popover(t("Join"), icon=":material/qr_code_2:", help=t("Where students open the app")):
        _code(url, True, st)
        st.markdown(f"**{url}**")


def _code(url: str, big: bool, where) -> None:
    where.image(qr_svg(url), width=QR_WIDTH[big])
