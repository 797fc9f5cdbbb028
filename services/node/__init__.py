"""A state's node: outbox, inbox, the sealed message store, and the officer's operations on it."""
