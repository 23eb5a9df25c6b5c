"""The `twostep` command: thin layers over the services."""
