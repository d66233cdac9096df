"""The watchkeeper command and its subcommands."""
