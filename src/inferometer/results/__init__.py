"""Versioned result schema, run-directory store and exports."""
