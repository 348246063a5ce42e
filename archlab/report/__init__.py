"""Reports of models and studies (tables, FLOP/param reports, figures) and export."""
