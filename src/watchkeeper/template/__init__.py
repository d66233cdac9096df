"""Go text/template as Prometheus uses it, shared by rules and the Alertmanager."""
