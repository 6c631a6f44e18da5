"""The web edge: app factory, channel registry, guards, observability and admin routes."""
