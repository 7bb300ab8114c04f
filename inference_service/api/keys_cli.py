"""``hazardscan keys``: create, list and revoke API keys for machine clients of ``/v1/*``.

hazardscan keys create --name cam-gateway --scopes detect,events:read --rate 60/min
hazardscan keys list
hazardscan keys revoke cam-gateway
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from inference_service.api.keys import SCOPES, ApiKeyError, open_key_store
from inference_service.storage import StorageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--database", help="service database URL (default: HAZARDSCAN_DATABASE_URL or the data dir's)")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = sub.add_parser("create", help="make a key and print it (shown this once)")
    create.add_argument("--name", required=True, help="who or what uses it, e.g. cam-gateway")
    create.add_argument("--scopes", required=True, help=f"comma-separated: {', '.join(SCOPES)} (admin = all)")
    create.add_argument("--rate", help="rate limit, e.g. 60/min, 5/s, 1000/hour (default: none)")
    sub.add_parser("list", help="list keys (never their secrets)")
    revoke = sub.add_parser("revoke", help="revoke a key by id or name (takes effect within seconds)")
    revoke.add_argument("key", help="key id or name")


def _when(ts: float | None) -> str:
    return "-" if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def run(args: argparse.Namespace) -> int:
    from inference_service.api.settings import Settings

    url = args.database or Settings().resolved_database_url()
    try:
        store = open_key_store(url)
        if args.action == "create":
            key, text = store.create(args.name, args.scopes, args.rate)
            sys.stdout.write(
                f"{text}\n\nkey {key.id} ({key.name}), scopes {','.join(sorted(key.scopes))}, "
                f"rate {key.rate or 'unlimited'}. Store it now: it is not shown again. Send it as\n"
                f"  Authorization: Bearer {text[:12]}…\n"
            )
        elif args.action == "list":
            rows = [("id", "name", "scopes", "rate", "created", "revoked")]
            rows += [
                (k.id, k.name, ",".join(sorted(k.scopes)), str(k.rate or "-"), _when(k.created_at), _when(k.revoked_at))
                for k in store.list()
            ]
            widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
            sys.stdout.write(
                "".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + "\n" for r in rows)
            )
        else:
            revoked = store.revoke(args.key)
            if revoked is None:
                sys.stderr.write(f"error: no active key with id or name {args.key!r}\n")
                return 1
            sys.stdout.write(f"revoked key {revoked.id} ({revoked.name})\n")
    except (ApiKeyError, StorageError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    return 0
