"""Prometheus exposition: the metric families, per-check series and the text format writer."""
