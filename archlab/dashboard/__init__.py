"""What the Streamlit dashboard shows, as plain data and figures, and how it is launched.

``data`` reads a study and names its metrics; ``units`` writes numbers the CLI's way; ``front``
holds the Pareto front and what each step along it buys; ``axes`` fits the explorer's axes and
places what lies beyond them; ``figures`` and ``health_figures`` draw; ``compare``, ``trial`` and
``health`` serve their pages; ``page`` holds the favicon and the storage path's wrapping;
``launch`` starts the server.
"""
