"""The shared library every service imports: envelope, keys, identifiers. No service logic here."""
