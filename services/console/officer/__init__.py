"""The officer console's pages: each handler parses the request, calls the node's application
layer, and renders; no procedure rule lives here."""
