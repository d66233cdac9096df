"""Self-metrics: counters, gauges and histograms exposed on /metrics."""
