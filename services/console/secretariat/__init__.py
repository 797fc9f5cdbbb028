"""The secretariat's console: the network's health, the directory's review and approval, the
audit log's standing and the hemispheric study's statistics, on the consoles' shared foundation.

Each page parses the request, calls the secretariat's application layer (``services/secretariat``)
and renders; the console decides nothing of its own.
"""
