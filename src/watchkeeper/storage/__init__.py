"""The storage interfaces (Appender, Querier) shared by every stage."""
