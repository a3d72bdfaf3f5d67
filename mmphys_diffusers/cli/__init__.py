"""The `mmphys` command line."""
