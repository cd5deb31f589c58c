"""What the worker measures besides time: memory, loaded libraries, machine load, metadata."""
