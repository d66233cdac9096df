"""Scrape pools and loops: pull metrics from targets into storage."""
