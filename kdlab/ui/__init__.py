"""The Streamlit layer of kdlab: the only kdlab code that imports streamlit.

General pieces (any page, including kdlab.experiments' page, may use them):

* ``process``: once-per-process set-up (one torch thread per job) and the bounded job pool; light, no torch.
* ``resources``: shared read-only objects: datasets (``st.cache_resource``), the run store, cached teachers.
* ``layout``: navigation, ``require_router()`` (first line of every page), headers, charts, explanations.
* ``state``: every session-state key, the lab's settings, this session's capped list of runs.
* ``settings``: ``lab_settings_ui(fields)`` -> LabSettings (config, baseline, dataset, error); the URL mirror.
* ``query``: the settings <-> URL query parameters (pure functions).
* ``runner``: ``submit(slot, fn)`` on the pool, ``watch(slot, draw)`` polls it from a fragment, Stop, queue place.
* ``live``: engine events -> plottable series and progress (pure functions).

Page sections: ``distill``, ``temperature``, ``sweep``, ``runs``.
"""
