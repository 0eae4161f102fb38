"""The load test: ``percentile``, and the websocket client against a real server (two sessions)."""
from __future__ import annotations

import math

import pytest

from kdlab.base.errors import KdlabError
from kdlab.serve.loadtest import percentile, run_loadtest


def test_percentile_nearest_rank():
    values = [float(v) for v in range(1, 21)]  # 1..20
    assert percentile(values, 50) == 10.0
    assert percentile(values, 95) == 19.0
    assert percentile(values, 100) == 20.0
    assert percentile(values, 0) == 1.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0  # unsorted input
    assert percentile([7.0], 95) == 7.0
    assert math.isnan(percentile([], 50))


def test_ws_codec_matches_streamlits_protos():
    """kdlab.serve.loadtest_ws encodes/decodes by hand (the core never imports streamlit): check its field numbers."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    from kdlab.serve import loadtest_ws as ws
    sent = BackMsg.FromString(ws.rerun_script("a=1", "hash", "Distill", ["wid"], fragment_id="frag"))
    cs = sent.rerun_script
    assert (cs.query_string, cs.page_script_hash, cs.fragment_id, cs.is_auto_rerun) == ("a=1", "hash", "frag", True)
    assert [(w.id, w.WhichOneof("value"), w.trigger_value) for w in cs.widget_states.widgets] == [
        ("wid", "trigger_value", True)]
    first = BackMsg.FromString(ws.rerun_script("", "", "Distill")).rerun_script
    assert (first.page_name, first.page_script_hash, first.fragment_id) == ("Distill", "", "")

    msg = ForwardMsg()
    msg.metadata.run.fragment_ids.append("f1")
    msg.new_session.page_script_hash = "h1"
    got = ws.parse(msg.SerializeToString())
    assert ws._text(ws._sub(got, 4), 9) == "h1"
    assert ws._sub(ws._sub(got, 2), 6)[2] == [b"f1"]
    msg = ForwardMsg()
    msg.auto_rerun.interval, msg.auto_rerun.fragment_id = 0.5, "f2"
    auto = ws._sub(ws.parse(msg.SerializeToString()), 21)
    assert ws.struct.unpack("<f", ws._one(auto, 1))[0] == 0.5 and ws._text(auto, 2) == "f2"
    numbers = {f: ForwardMsg.DESCRIPTOR.fields_by_name[f].number
               for f in ("navigation", "page_info_changed", "page_not_found", "stop_auto_rerun")}
    assert numbers == {"navigation": 23, "page_info_changed": 12, "page_not_found": 15, "stop_auto_rerun": 28}
    nav = ForwardMsg()
    nav.navigation.page_script_hash = "h2"
    assert ws._text(ws._sub(ws.parse(nav.SerializeToString()), 23), 4) == "h2"
    msg = ForwardMsg()
    msg.script_finished = ForwardMsg.FINISHED_SUCCESSFULLY
    assert ws._one(ws.parse(msg.SerializeToString()), 6) == ws.FINISHED_SUCCESSFULLY
    msg = ForwardMsg()
    el = msg.delta.new_element
    el.button.id, el.button.label, el.button.disabled = "id1", "Run", True
    button = ws._sub(ws._sub(ws._sub(ws.parse(msg.SerializeToString()), 5), 3), 19)
    assert (ws._text(button, 1), ws._text(button, 2), ws._one(button, 8)) == ("id1", "Run", 1)
    for setter, expected in [(lambda e: setattr(e.alert, "body", "bad") or setattr(e.alert, "format", 1), "bad"),
                             (lambda e: setattr(e.exception, "type", "E") or setattr(e.exception, "message", "m"), "E: m")]:
        msg = ForwardMsg()
        setter(msg.delta.new_element)
        assert ws._element_error(ws._sub(ws._sub(ws.parse(msg.SerializeToString()), 5), 3)) == expected
    msg = ForwardMsg()
    msg.delta.new_element.markdown.body = "#### Confusion matrices"
    assert ws._text(ws._sub(ws._sub(ws._sub(ws.parse(msg.SerializeToString()), 5), 3), 29), 1).endswith(ws.DONE_TEXT)


def test_unknown_client_is_refused():
    from kdlab.base.errors import KdlabError

    with pytest.raises(KdlabError, match="unknown load-test client"):
        run_loadtest(sessions=1, client="carrier-pigeon")


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_ws_client_two_sessions_complete():
    """Two browserless sessions open Distill, press Run and get their confusion matrices (about 10 s)."""
    report = run_loadtest(sessions=2, timeout=90.0, quiet=True, client="ws")
    assert report["error_messages"] == []
    assert (report["completed"], report["errors"]) == (2, 0)
    assert 0 < report["p50_s"] <= report["p95_s"] < 90
    assert report["peak_rss_mb"] > 0


@pytest.mark.parametrize("sessions, timeout", [(0, 10.0), (501, 10.0), (2, 0.0)])
def test_out_of_range_arguments_are_refused_before_a_server_starts(sessions, timeout):
    with pytest.raises(KdlabError, match="sessions must be"):
        run_loadtest(sessions=sessions, timeout=timeout, quiet=True)
