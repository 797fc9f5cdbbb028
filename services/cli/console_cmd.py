"""``cifta console``: serve a node's officer console (loopback by default)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from services import i18n
from services.i18n import N_


def cmd_console(args: argparse.Namespace) -> int:
    language = i18n.from_environment(None, os.environ)
    if bool(args.tls_cert) != bool(args.tls_key):
        print(
            i18n.gettext_for(language, N_("error: --tls-cert and --tls-key go together")),
            file=sys.stderr,
        )
        return 2
    home = Path(args.home or "")
    if not args.home or not (home / "node.json").exists():
        print(
            i18n.gettext_for(language, N_("error: %(reason)s"))
            % {"reason": i18n.translate("officer.store_missing", {"home": args.home}, language)},
            file=sys.stderr,
        )
        return 2
    import uvicorn

    from services.console.officer.app import build_officer_console

    app = build_officer_console(home, secure=bool(args.tls_cert))
    scheme = "https" if args.tls_cert else "http"
    print(i18n.gettext_for(language, N_("console of %(home)s at %(url)s")) % {
        "home": home, "url": f"{scheme}://{args.host}:{args.port}/"
    }, flush=True)  # fmt: skip
    uvicorn.run(
        app, host=args.host, port=args.port, log_level="warning", server_header=False,
        ssl_certfile=args.tls_cert, ssl_keyfile=args.tls_key, proxy_headers=False,
    )  # fmt: skip
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    language = i18n.from_environment(None, os.environ)

    def t(text: str) -> str:
        return i18n.gettext_for(language, text)

    p = sub.add_parser("console", help=t(N_("serve a node's officer console")))
    p.add_argument("--home", default=os.environ.get("CIFTA_NODE_HOME"),
                   help=t(N_("the node's home (or CIFTA_NODE_HOME)")))  # fmt: skip
    p.add_argument("--host", default="127.0.0.1", help=t(N_("address to listen on")))
    p.add_argument("--port", type=int, default=8080, help=t(N_("port to listen on")))
    p.add_argument("--tls-cert", help=t(N_("TLS certificate (PEM); with --tls-key")))
    p.add_argument("--tls-key", help=t(N_("TLS private key (PEM)")))
    p.set_defaults(func=cmd_console)
