"""Running the bench: the processes it starts (Redis, upstream, targets, Locust) and the CLI."""
