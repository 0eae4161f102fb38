"""kdlab home page (placeholder until the app lands)."""
import streamlit as st

import kdlab

st.title("kdlab")
st.write(f"kdlab {kdlab.__version__}: the distillation lab is coming.")
