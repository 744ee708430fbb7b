"""The imperative shell: App, workers, leases, timers, event delivery, outbox relay."""
