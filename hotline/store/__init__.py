"""Where sessions and short-lived counters live: Redis (or in-process for one worker)."""
