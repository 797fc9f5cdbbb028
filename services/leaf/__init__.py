"""A state's own leaf node: its local nats-server, bound to its account on the hub."""
