"""Voice channel: platform dialects, speech rendering, TTS worker and audio cache, routes."""
