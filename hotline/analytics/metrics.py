"""Prometheus series of the analytics figures, on the app's registry.

Bounded labels only: `channel` (the mounted channels), `flow` and `state` (names in
the flow files), `outcome` and `score` (small fixed sets). No flow version: versions
accumulate with every reload and would grow the series without bound — versions are
compared in `hotline report` and `/admin/analytics`. Counted when a session settles, by
the worker that settles it, so the sum over workers counts each session once.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from hotline.analytics.rollup import Summary

__all__ = ["SECONDS_BUCKETS", "STEPS_BUCKETS", "AnalyticsMetrics"]

STEPS_BUCKETS = (1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50)
SECONDS_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600)


class AnalyticsMetrics:
    """`hotline_analytics_*` series."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.sessions = Counter(
            "hotline_analytics_sessions",
            "Settled sessions by outcome: result, error, transfer, exit, abandoned.",
            ["channel", "flow", "outcome"],
            registry=registry,
        )
        self.steps = Histogram(
            "hotline_analytics_steps_to_result",
            "Requests a session took to reach its result.",
            ["channel", "flow"],
            buckets=STEPS_BUCKETS,
            registry=registry,
        )
        self.seconds = Histogram(
            "hotline_analytics_seconds_to_result",
            "Seconds from a session's first request to its result.",
            ["channel", "flow"],
            buckets=SECONDS_BUCKETS,
            registry=registry,
        )
        self.visits = Counter(
            "hotline_analytics_state_visits",
            "Arrivals at a state (the funnel), in settled sessions.",
            ["channel", "flow", "state"],
            registry=registry,
        )
        self.dropoffs = Counter(
            "hotline_analytics_dropoffs",
            "Sessions abandoned (or exited) at a state.",
            ["channel", "flow", "state"],
            registry=registry,
        )
        self.invalid = Counter(
            "hotline_analytics_invalid_inputs",
            "Inputs refused at a state, in settled sessions.",
            ["channel", "flow", "state"],
            registry=registry,
        )
        self.scores = Counter(
            "hotline_analytics_survey_scores",
            "Satisfaction survey answers by score.",
            ["flow", "score"],
            registry=registry,
        )
        self.dropped = Counter(
            "hotline_analytics_dropped_turns",
            "Turns not recorded: the buffer was full or Redis failed.",
            registry=registry,
        )

    def count(self, summary: Summary) -> None:
        group = summary.group
        channel, flow = group.channel, group.flow
        self.sessions.labels(channel, flow, summary.outcome or "abandoned").inc()
        if summary.outcome == "result":
            self.steps.labels(channel, flow).observe(summary.steps)
            self.seconds.labels(channel, flow).observe(summary.seconds)
        for state, n in summary.visits.items():
            self.visits.labels(channel, flow, state).inc(n)
        for state, n in summary.invalid.items():
            self.invalid.labels(channel, flow, state).inc(n)
        if summary.left_at and summary.outcome in ("", "exit"):
            self.dropoffs.labels(channel, flow, summary.left_at).inc()
        if summary.score:
            self.scores.labels(flow, str(summary.score)).inc()
