"""Consumers of score results (the UI is another one, in realtime/ui)."""
