"""Plotly figure builders: plain data in, a figure out; no Streamlit and no torch."""
