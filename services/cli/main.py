"""``cifta``: one command for officers and operators."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from services.cli import (
    attachment_cmd,
    audit_cmd,
    console_cmd,
    delivery_cmd,
    demo,
    demo_cluster,
    directory_cmd,
    hub_cmd,
    leaf_cmd,
    lookup_cmd,
    messages,
    messages_cmd,
    node_access,
    node_cmd,
    officer_cmd,
    secretariat_cmd,
    tracing_cmd,
    usage,
)
from services.core.keys import KeyFileError, NodeKeys
from services.core.logs import configure
from services.i18n import N_
from services.node.application import ApplicationError


def _passphrase(env_var: str | None) -> bytes | None:
    if not env_var:
        return None
    value = os.environ.get(env_var)
    if value is None:
        raise SystemExit(f"error: environment variable {env_var} is not set")
    return value.encode()


def cmd_keys_generate(args: argparse.Namespace) -> int:
    path = Path(args.out)
    if path.exists() and not args.force:
        print(f"error: {path} exists; pass --force to replace it", file=sys.stderr)
        return 2
    keys = NodeKeys.generate(args.party, post_quantum_signature=args.post_quantum)
    keys.save(path, passphrase=_passphrase(args.passphrase_env))
    pub = keys.public_bundle()
    print(f"wrote private keys of {args.party} to {path} (mode 0600)")
    print(
        f"signing key id {pub['signing']['kid']}, encryption key id {pub['encryption'][0]['kid']}"
    )
    return 0


def cmd_keys_public(args: argparse.Namespace) -> int:
    try:
        keys = NodeKeys.load(Path(args.keyfile), passphrase=_passphrase(args.passphrase_env))
    except KeyFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(keys.public_bundle(), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = usage.Parser(prog="cifta", description=__doc__)
    node_access.add_lang(parser)
    sub = parser.add_subparsers(dest="command", required=True)

    keys = sub.add_parser("keys", help="generate and inspect a node's keys").add_subparsers(
        dest="keys_command", required=True
    )
    gen = keys.add_parser("generate", help="generate a party's signing and encryption keys")
    gen.add_argument("--party", required=True, help="ISO 3166-1 alpha-3 code, or SEC")
    gen.add_argument("--out", required=True, help="private key file to write (mode 0600)")
    gen.add_argument("--post-quantum", action="store_true", help="add an ML-DSA-65 signing key")
    gen.add_argument("--passphrase-env", help="seal the file under the passphrase in this variable")
    gen.add_argument("--force", action="store_true")
    gen.set_defaults(func=cmd_keys_generate)
    pub = keys.add_parser("public", help="print the public keys the directory publishes")
    pub.add_argument("keyfile")
    pub.add_argument("--passphrase-env")
    pub.set_defaults(func=cmd_keys_public)

    hub_cmd.add_parser(sub)
    node_cmd.add_parsers(sub)
    messages_cmd.add_parsers(sub)
    tracing_cmd.add_parsers(sub)
    delivery_cmd.add_parsers(sub)
    directory_cmd.add_parser(sub)
    audit_cmd.add_parser(sub)
    lookup_cmd.add_parsers(sub)
    leaf_cmd.add_parser(sub)
    attachment_cmd.add_parsers(sub)
    officer_cmd.add_parser(sub)
    console_cmd.add_parsers(sub)
    secretariat_cmd.add_parser(sub)

    d = sub.add_parser("demo", help="run the demonstration scenario")
    d.add_argument("--workdir", default="var/demo", help="where the demo keeps keys and data")
    d.add_argument("--registry", default="deploy/registry.json", help="the states to set up")
    d.add_argument("--cluster", action="store_true",
                   help="on a three-server hub, MEX on a leaf node, through faults")  # fmt: skip
    d.set_defaults(func=lambda a: (demo_cluster.run if a.cluster else demo.run)(a))
    return parser


def _error(args: argparse.Namespace, code: str, params: dict[str, object], line: str) -> int:
    """One line for a person; under ``--json``, the code, its parameters and that line as JSON
    (on standard error, as the line would be). Exit code 2 either way."""
    if getattr(args, "json", False):
        error = {"code": code, "params": params, "message": line}
        print(json.dumps({"error": error}, ensure_ascii=False, default=str), file=sys.stderr)
    else:
        print(messages.t(N_("error: %(reason)s")) % {"reason": line}, file=sys.stderr)
    return 2


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args))
    except BrokenPipeError:
        raise  # an OSError, but no failure of the command: main() ends it quietly
    except ApplicationError as exc:
        return _error(args, exc.code, exc.params, messages.error(exc.code, exc.params))
    except (
        *hub_cmd.ERRORS,
        *node_cmd.ERRORS,
        *directory_cmd.ERRORS,
        *audit_cmd.ERRORS,
        *leaf_cmd.ERRORS,
    ) as exc:
        return _error(args, "failed", {}, str(exc))


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    usage.Parser.json_errors = "--json" in words  # a usage mistake answers in kind
    messages.use(messages.choose(words, os.environ))
    args = build_parser().parse_args(words)
    configure(json=False, level="WARNING")  # `node run` reconfigures for the service's logs
    try:
        code = _run(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # the reader went away (`cifta inbox | head`): what it wanted it has; say nothing more.
        # Python's own advice: point stdout at devnull so the exit's flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a writer the pipe closed on
    return code


if __name__ == "__main__":
    raise SystemExit(main())
