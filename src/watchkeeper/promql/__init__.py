"""The PromQL language: AST, parser adapter, engine and functions."""
