"""Cached access to the archlab library for the views: what is cached, and on which key.

A study's trials are cached on (storage URL, study name, stamp), the stamp being the trials per
state and the last completion time: a running search refreshes the pages as soon as it finishes a
trial, and nothing is recomputed while it does not. A trial's model and report never change once
the trial exists, so they are cached on (storage URL, study name, trial number).
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
import streamlit as st
from optuna.storages import BaseStorage

from archlab.dashboard import data as dd
from archlab.dashboard import health as study_health
from archlab.dashboard import trial as trial_work
from archlab.dashboard.launch import storage_url
from archlab.report.tables import ModelReport
from archlab.search.references import CACHE_NAME, References, cached_references, measure_references
from archlab.study.storage import StorageError, study_dir

REFRESH_S = 5.0


def shown_url(url: str) -> str:
    """The storage URL with any password hidden."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


@st.cache_resource(show_spinner=False)
def _storage(url: str) -> BaseStorage:
    return dd.open_dashboard_storage(url)


def storage() -> tuple[str, BaseStorage]:
    """The storage URL and storage, or stop the page with why it cannot be opened."""
    url = storage_url()
    try:
        return url, _storage(url)
    except StorageError as err:
        st.error(f"Cannot open the storage {shown_url(url)}: {err}")
        st.stop()
        raise  # unreachable: st.stop() ends the run


@st.cache_data(ttl=REFRESH_S, show_spinner=False)
def study_rows(url: str) -> pd.DataFrame:
    return dd.study_rows(_storage(url))


@st.cache_data(show_spinner="Reading the study's trials…", max_entries=32)
def _study_data(url: str, name: str, stamp: tuple[Any, ...]) -> dd.StudyData:
    return dd.load_study_data(_storage(url), name)


def study_data() -> dd.StudyData:
    """The study picked in the sidebar, or stop the page with why there is none."""
    url, store = storage()
    name = st.session_state.get("study")
    if not name:
        st.info(
            f"No study in {shown_url(url)} yet. Start one with "
            "`archlab search --space plgvit --target-latency 250ms`."
        )
        st.stop()
    try:
        return _study_data(url, name, dd.study_stamp(store, name))
    except StorageError as err:
        st.error(str(err))
        st.stop()
        raise


def refresh_every() -> float | None:
    """The live-refresh period chosen in the sidebar (None: off)."""
    return REFRESH_S if st.session_state.get("live") else None


@st.cache_resource(show_spinner=False, max_entries=8)
def _trial_model(url: str, name: str, number: int, _data: dd.StudyData) -> Any:
    return dd.build_trial_model(_data, number)


@st.cache_data(show_spinner=False, max_entries=32)
def trial_report(url: str, name: str, number: int, _data: dd.StudyData) -> ModelReport:
    """Per-module params/MACs of a trial (raises ValueError for an impossible config)."""
    return dd.trial_report(_data, number, _trial_model(url, name, number, _data))


@st.cache_data(show_spinner=False, max_entries=16)
def stage_latency(url: str, name: str, number: int, _data: dd.StudyData) -> pd.DataFrame:
    """Per-stage latency of a trial's model, timed once on this CPU."""
    return trial_work.stage_latency(_data, _trial_model(url, name, number, _data))


@st.cache_data(show_spinner=False, max_entries=8)
def trial_files(url: str, name: str, number: int) -> trial_work.TrialFiles:
    """A trial's exported files (config, weights, ONNX, report), made once."""
    return trial_work.trial_files(url, name, number)


def references(data: dd.StudyData) -> References:
    """The family's presets already measured with the study's settings (from the disk cache)."""
    assert data.record is not None  # the callers check
    return cached_references(data.record, study_dir(data.name))


def measure_missing_references(data: dd.StudyData) -> References:
    """Measure the presets not in the cache yet, with a progress bar."""
    out = study_dir(data.name)
    bar = st.progress(0.0)

    def progress(done: int, total: int, preset: str) -> None:
        bar.progress(
            done / total,
            text=f"Measuring published variant {preset} "
            f"({done + 1}/{total}) on this CPU, once: cached in {out / CACHE_NAME}",
        )

    assert data.record is not None  # the callers check
    refs = measure_references(data.record, out, progress=progress)
    bar.empty()
    return refs


@st.cache_data(show_spinner=False, max_entries=32)
def hypervolume(
    url: str, name: str, stamp: tuple[Any, ...], _data: dd.StudyData
) -> study_health.Hypervolume | None:
    return study_health.hypervolume_history(_data)


@st.cache_data(show_spinner="Ranking knobs…", max_entries=32)
def importance(
    url: str, name: str, stamp: tuple[Any, ...], objective: int, evaluator: str
) -> tuple[pd.Series | None, str | None]:
    return study_health.knob_importance(_storage(url), name, objective, evaluator)


def stamp(data: dd.StudyData) -> tuple[Any, ...]:
    """The current stamp of a loaded study (for caches keyed on it)."""
    url, store = storage()
    return dd.study_stamp(store, data.name)
