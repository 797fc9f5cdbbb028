"""The directory service: the secretariat's signed directory of national points of contact and
their keys (Art. XIV.2), its lifecycle (registration, rotation, revocation, contact updates) and
its publication into every state's read-only key-value bucket."""
