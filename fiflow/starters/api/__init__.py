"""The HTTP API: how channel apps and the FI's systems start and answer work."""
