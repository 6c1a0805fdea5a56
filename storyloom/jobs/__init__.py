"""Render jobs: state machine, broker, worker, progress and cancel."""
