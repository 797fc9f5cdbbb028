"""``cifta console``: serve a node's officer console (loopback by default)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from services import i18n
from services.core.accounts import AccountError
from services.i18n import N_


def exposed(args: argparse.Namespace) -> bool:
    """Whether a console would serve passwords, second-factor codes and session cookies in the
    clear beyond this machine (as the hub refuses a plaintext listener beyond loopback)."""
    from services.hub.config import is_loopback

    return not (args.tls_cert or args.behind_tls_proxy or is_loopback(args.host))


def add_serving_options(p: argparse.ArgumentParser, t: Callable[[str], str]) -> None:
    """``--host``'s companions shared by the officer and the secretariat consoles."""
    p.add_argument("--tls-cert", help=t(N_("TLS certificate (PEM); with --tls-key")))
    p.add_argument("--tls-key", help=t(N_("TLS private key (PEM)")))
    p.add_argument("--behind-tls-proxy", action="store_true", help=t(N_(
        "a TLS-terminating proxy is in front: cookies are Secure and HSTS is sent"
    )))  # fmt: skip
    p.add_argument("--trusted-proxy", action="append", default=[], metavar="ADDRESS", help=t(N_(
        "the proxy's address or network (repeatable): only from it is X-Forwarded-For believed, "
        "so that each client, not the proxy, has its own sign-in rate limit"
    )))  # fmt: skip


def trusted_proxies(args: argparse.Namespace) -> tuple[str, ...]:
    """``--trusted-proxy``'s addresses, checked; ValueError holding the first that is none."""
    from services.console.web.config import trusted_proxy

    checked = []
    for given in args.trusted_proxy:
        try:
            checked.append(trusted_proxy(given))
        except ValueError:
            raise ValueError(given) from None
    return tuple(checked)


def cmd_console(args: argparse.Namespace) -> int:
    language = i18n.from_environment(None, os.environ)
    if bool(args.tls_cert) != bool(args.tls_key):
        print(
            i18n.gettext_for(language, N_("error: --tls-cert and --tls-key go together")),
            file=sys.stderr,
        )
        return 2
    if exposed(args):
        print(i18n.gettext_for(language, N_(
            "error: --host %(host)s listens beyond this machine without TLS: give --tls-cert and "
            "--tls-key, or --behind-tls-proxy if a TLS-terminating proxy is in front of it"
        )) % {"host": args.host}, file=sys.stderr)  # fmt: skip
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
    from services.console.web.config import public_origin

    origin = None
    if args.public_origin:
        try:
            origin = public_origin(args.public_origin)
        except ValueError:
            print(i18n.gettext_for(language, N_(
                "error: --public-origin %(value)s is not an origin: expected https://NAME[:PORT], "
                "a host name (not an address) and no path"
            )) % {"value": args.public_origin}, file=sys.stderr)  # fmt: skip
            return 2
    try:
        proxies = trusted_proxies(args)
    except ValueError as exc:
        print(i18n.gettext_for(language, N_(
            "error: --trusted-proxy %(value)s is not an IP address or network"
        )) % {"value": exc}, file=sys.stderr)  # fmt: skip
        return 2
    secure = bool(args.tls_cert or args.behind_tls_proxy)
    try:
        app = build_officer_console(
            home, secure=secure, public_origin=origin, trusted_proxies=proxies
        )
    except AccountError as exc:  # the accounts' key file refused, or missing: one line
        print(
            i18n.gettext_for(language, N_("error: %(reason)s"))
            % {"reason": i18n.translate(exc.code, exc.params, language)},
            file=sys.stderr,
        )
        return 2
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
    add_serving_options(p, t)
    p.add_argument("--public-origin", metavar="URL", help=t(N_(
        "the name officers open the console under, e.g. https://console.example.org (the "
        "security keys' relying party); without it, security keys work only on localhost"
    )))  # fmt: skip
    p.set_defaults(func=cmd_console)
