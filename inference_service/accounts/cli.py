"""``hazardscan users add --username U --role admin --org "Org" [--display-name N] [--password-stdin]``

Creates the organisation when it does not exist yet; writes to the database the service uses
(``HAZARDSCAN_DATABASE_URL``, default ``<HAZARDSCAN_DATA_DIR>/hazardscan.db``) unless ``--database-url``.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from inference_service.accounts.service import ROLES, Accounts, AccountsError


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = sub.add_parser("add", help="create a user (and the organisation if new)")
    add.add_argument("--username", required=True)
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--org", required=True, help="organisation name")
    add.add_argument("--display-name", help="name shown in records (default: the username)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin (first line)")
    add.add_argument("--database-url", help="sqlite:///path or postgresql://… (default: the service's)")
    ls = sub.add_parser("list", help="list the users of an organisation")
    ls.add_argument("--org", required=True)
    ls.add_argument("--database-url")


def run(args: argparse.Namespace) -> int:
    from inference_service.api.settings import Settings
    from inference_service.storage import Database, StorageError

    settings = Settings()
    url = args.database_url or settings.resolved_database_url()
    if not args.database_url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        db = Database(url)
        accounts = Accounts(db)
    except StorageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        if args.action == "list":
            for u in accounts.list_users(accounts.ensure_org(args.org)):
                print(f"{u.username}\t{u.role}\t{u.display_name}")
            return 0
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = getpass.getpass("password: ")
            if getpass.getpass("again: ") != password:
                print("error: the passwords differ", file=sys.stderr)
                return 2
        org_id = accounts.ensure_org(args.org)
        user = accounts.add_user(args.username, password, args.role, org_id, args.display_name)
    except AccountsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        db.close()
    print(f"created {user.role} {user.username!r} in {user.org_name!r} (id {user.id})")
    return 0
