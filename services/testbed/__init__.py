"""A real hub and real nodes on loopback, built with the secretariat's and the nodes' own code:
what the tests and the benchmarks run against. Nothing under ``services/`` imports it."""
