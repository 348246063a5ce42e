"""archlab dashboard: page config, the study picker in the sidebar, and the pages.

Run it with ``archlab dashboard`` (or ``streamlit run app/streamlit_app.py``); the storage comes
from ``$ARCHLAB_STORAGE`` (default: ``studies/archlab.db``). ``?study=NAME`` preselects a study.
"""

from __future__ import annotations

import loaders
import streamlit as st

from archlab.dashboard.launch import storage_url
from archlab.dashboard.page import breakable_path, favicon
from archlab.study.storage import StorageError

st.set_page_config(page_title="archlab", page_icon=favicon(), layout="wide")


def _pick_study() -> None:
    url = storage_url()
    st.sidebar.caption(f"Storage: {breakable_path(loaders.shown_url(url))}", unsafe_allow_html=True)
    try:
        rows = loaders.study_rows(url)
    except StorageError as err:
        st.sidebar.error(str(err))
        return
    names = [] if rows.empty else list(rows["study"])
    if not names:
        st.sidebar.info("No studies yet.")
        return
    if st.session_state.get("study") not in names:
        wanted = st.query_params.get("study")
        st.session_state["study"] = wanted if wanted in names else names[0]
    st.sidebar.selectbox("Study", names, key="study")
    st.sidebar.toggle(
        f"Live refresh (every {loaders.REFRESH_S:.0f} s)",
        key="live",
        help="Re-read the study while a search is running.",
    )


_pick_study()
st.navigation(
    [
        st.Page("views/overview.py", title="Studies", icon=":material/list:", default=True),
        st.Page("views/pareto.py", title="Pareto explorer", icon=":material/scatter_plot:"),
        st.Page("views/trial.py", title="Trial", icon=":material/memory:"),
        st.Page("views/compare.py", title="Compare", icon=":material/compare_arrows:"),
        st.Page("views/health.py", title="Study health", icon=":material/monitor_heart:"),
    ]
).run()
