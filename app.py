"""kdlab: the Streamlit app. `streamlit run app.py`

Every page runs through this file: it configures the page and the navigation (kdlab.ui.layout), runs the
chosen page (the home page is kdlab.ui.home), then starts the once-per-process set-up (kdlab.ui.process).
"""
from kdlab.ui import layout  # light: the home page must not wait for torch to import

page = layout.navigation()
try:
    page.run()
finally:  # also after a page's st.stop()
    layout.after_run()
