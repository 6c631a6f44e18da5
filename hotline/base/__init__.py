"""Shared types and plumbing every package uses: settings, errors, typed values, privacy, logs, metrics."""
