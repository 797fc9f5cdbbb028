"""The consoles: web applications served by a node (its officers') and by the secretariat.

``web`` is the foundation both share (app factory, sessions, CSRF, CSP and security headers,
sign-in with password and TOTP, locale, base layout); ``officer`` holds the officer console's
pages, which call the node's application layer and add no procedure logic of their own.
"""
