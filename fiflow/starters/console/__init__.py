"""The staff console: server-rendered pages under `/console` on the API process."""
