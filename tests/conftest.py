"""Shared fixtures: the tiny random BERT and real base encoder (base_fixtures), and the real
Label Studio server (studio_fixtures)."""

pytest_plugins = ["base_fixtures", "studio_fixtures"]
