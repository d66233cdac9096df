"""Loading and validating prometheus.yml and rule files, with line-numbered errors."""
