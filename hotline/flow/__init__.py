"""The flow engine and its parts: model, loading, checks, actions, registry, graph."""

__all__: list[str] = []
