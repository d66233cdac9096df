"""Recording and alerting rules evaluated on a schedule."""
