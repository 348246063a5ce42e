"""What the Streamlit dashboard shows, as plain data and figures, and how it is launched."""
