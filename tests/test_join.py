"""kdlab.ui.join and the server's public URL (kdlab.ui.serve): the classroom address for each kind of bind, and
a QR code made on this machine that reads back (tests/helpers/qr_decode.py) as exactly that address."""
import argparse
import socket
import sys
from pathlib import Path

import pytest

from kdlab.ui import join, serve

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
from qr_decode import decode, matrix_from_svg  # noqa: E402

URLS = ["http://192.0.2.2:8501/", "https://lab.example.org/kdlab/", "http://[fd00::7]:8501/",
        "https://kdlab.example-university.edu/lectures/distillation/?present=0&room=" + "b" * 60]


@pytest.mark.parametrize("host, url", [("0.0.0.0", "http://192.0.2.9:8600/"), ("", "http://192.0.2.9:8600/"),
                                       ("::", "http://192.0.2.9:8600/"), ("192.0.2.40", "http://192.0.2.40:8600/"),
                                       ("lab.example.org", "http://lab.example.org:8600/"),
                                       ("fd00::7", "http://[fd00::7]:8600/")])
def test_the_classroom_url_of_a_bind_beyond_loopback(host, url):
    assert join.classroom_url(host, 8600, lan=lambda: "192.0.2.9").url == url


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.1.1"])
def test_on_loopback_there_is_no_url_and_the_note_says_how_to_serve_a_class(host):
    address = join.classroom_url(host, 8501, lan=lambda: pytest.fail("loopback needs no LAN address"))
    assert address.url is None
    assert f"listens on {host} only" in address.note and "kdlab serve --host 0.0.0.0" in address.note


def test_an_explicit_public_url_wins_and_a_bad_one_is_refused():
    assert join.classroom_url("127.0.0.1", 8501, "https://lab.example.org/").url == "https://lab.example.org/"
    for bad in ("lab.example.org", "ftp://x/", "http://"):
        with pytest.raises(ValueError, match="http://host:port/"):
            join.classroom_url("0.0.0.0", 8501, bad)


def test_a_wildcard_bind_without_a_network_says_so():
    address = join.classroom_url("0.0.0.0", 8501, lan=lambda: None)
    assert address.url is None and "--public-url" in address.note


def test_the_lan_address_is_the_outgoing_interfaces_and_nothing_is_sent(monkeypatch):
    sent = []
    monkeypatch.setattr(socket.socket, "send", lambda *a: sent.append(a))
    monkeypatch.setattr(socket.socket, "sendto", lambda *a: sent.append(a))
    found = join.lan_address()
    assert sent == []
    if found is not None:  # a machine with a network: an address of one of its interfaces, never loopback
        assert not join.is_loopback(found)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((found, 0))  # binding succeeds only for an address this machine owns


def test_the_server_tells_the_app_its_address():
    ns = lambda host, url=None: argparse.Namespace(host=host, port=8502, public_url=url)  # noqa: E731
    assert serve.environment(ns("127.0.0.1"), {}) == {}
    assert serve.environment(ns("127.0.0.1", "https://lab.example.org/"), {}) == {
        "KDLAB_PUBLIC_URL": "https://lab.example.org/"}
    lan = join.lan_address()
    assert serve.environment(ns("0.0.0.0"), {}) == ({"KDLAB_PUBLIC_URL": f"http://{lan}:8502/"} if lan else {})
    assert serve.environment(ns("0.0.0.0"), {"KDLAB_PUBLIC_URL": "https://mine/"}) == {}  # the user's own stands
    args = serve.parse(["--host", "0.0.0.0", "--port", "8502", "--public-url", "https://lab.example.org/"])
    assert args.public_url == "https://lab.example.org/"
    with pytest.raises(SystemExit):
        serve.parse(["--public-url", "lab.example.org"])


@pytest.mark.parametrize("url", URLS)
def test_the_qr_code_is_made_here_and_reads_back_as_exactly_the_url(url, monkeypatch):
    join.qr_svg.cache_clear()

    def no_network(*args, **kwargs):
        raise AssertionError("the QR code must be made without the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    svg = join.qr_svg(url)
    assert svg.startswith("<svg") and 'fill="#fff"' in svg  # its own white background: readable on a dark theme
    read = decode(matrix_from_svg(svg))
    assert read["text"] == url and read["level"] in ("M", "Q", "H")
    assert read["version"] == join.qr_code(url).version  # what segno says it made


def test_the_reader_refuses_a_damaged_code():
    matrix = matrix_from_svg(join.qr_svg(URLS[0]))
    matrix[-1][-1] ^= 1  # one data module flipped
    with pytest.raises(AssertionError, match="Reed-Solomon"):
        decode(matrix)
