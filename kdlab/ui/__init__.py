"""The Streamlit layer of kdlab: the only kdlab code that imports streamlit.

General pieces (any page, including kdlab.experiments' page, may use them):

* ``process``: once-per-process set-up (one torch thread per job) and the bounded job pool; light, no torch.
* ``resources``: shared read-only objects: datasets (``st.cache_resource``), the run store, cached teachers.
* ``layout``: navigation, ``require_router()`` (first line of every page), headers, charts, explanations.
* ``state``: every session-state key, the lab's settings, this session's capped list of runs.
* ``forms``: widgets, the URL and the stale check from a settings table (kdlab.base.settings).
* ``settings``: ``lab_settings_ui(names)`` -> LabSettings (the lab, its data, whether it is valid): the sidebar.
* ``i18n``: the session's language (the switch, ``?lang=zh``), the page texts of ``assets/``.
* ``runner``: ``submit(slot, fn)`` on the pool, ``watch(slot, draw)`` polls it from a fragment, Stop, queue place.
* ``live``: engine events -> plottable series and progress (pure functions).

Page sections: ``playground``, ``distill``, ``temperature``, ``sweep``, ``runs``, ``experiments_ui``, ``lesson``.
"""
