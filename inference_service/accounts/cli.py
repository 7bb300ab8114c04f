"""``hazardscan users add|list|passwd|disable|enable``: the inspector app's users, from the server's shell.

``add`` creates the organisation when it does not exist yet; ``passwd`` and ``disable`` end the user's sessions at
once (a leaked password, a lost phone, someone who left). Each writes to the database the service uses
(``HAZARDSCAN_DATABASE_URL``, default ``<HAZARDSCAN_DATA_DIR>/hazardscan.db``) unless ``--database-url``.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from inference_service.accounts.service import ROLES, Accounts, AccountsError

_DB_HELP = "sqlite:///path or postgresql://… (default: the service's)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = sub.add_parser("add", help="create a user (and the organisation if new)")
    add.add_argument("--username", required=True)
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--org", required=True, help="organisation name")
    add.add_argument("--display-name", help="name shown in records (default: the username)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin (first line)")
    add.add_argument("--database-url", help=_DB_HELP)
    ls = sub.add_parser("list", help="list the users of an organisation (disabled ones marked)")
    ls.add_argument("--org", required=True)
    ls.add_argument("--database-url", help=_DB_HELP)
    pw = sub.add_parser("passwd", help="set a user's password; their sessions end")
    pw.add_argument("--username", required=True)
    pw.add_argument("--password-stdin", action="store_true", help="read the password from stdin (first line)")
    pw.add_argument("--database-url", help=_DB_HELP)
    for action, what in (("disable", "a user can no longer log in; their sessions end"), ("enable", "undo disable")):
        one = sub.add_parser(action, help=what)
        one.add_argument("--username", required=True)
        one.add_argument("--database-url", help=_DB_HELP)


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
        return _ACTIONS[args.action](accounts, args)
    except AccountsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        db.close()


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass("password: ")
    if getpass.getpass("again: ") != password:
        raise AccountsError("the passwords differ")
    return password


def _add(accounts: Accounts, args: argparse.Namespace) -> int:
    password = _password(args)
    user = accounts.add_user(args.username, password, args.role, accounts.ensure_org(args.org), args.display_name)
    print(f"created {user.role} {user.username!r} in {user.org_name!r} (id {user.id})")
    return 0


def _list(accounts: Accounts, args: argparse.Namespace) -> int:
    org_id = accounts.org_id(args.org)
    if org_id is None:
        raise AccountsError(f"no organisation called {args.org!r}")
    for u in accounts.list_users(org_id, inactive=True):
        print(f"{u.username}\t{u.role}\t{u.display_name}" + ("" if u.active else "\tdisabled"))
    return 0


def _user(accounts: Accounts, args: argparse.Namespace) -> str:
    user = accounts.find_user(args.username)
    if user is None:
        raise AccountsError(f"no user called {args.username!r}")
    return user.id


def _passwd(accounts: Accounts, args: argparse.Namespace) -> int:
    user_id = _user(accounts, args)
    accounts.set_password(user_id, _password(args))
    print(f"new password for {args.username!r}; their sessions have ended")
    return 0


def _disable(accounts: Accounts, args: argparse.Namespace) -> int:
    accounts.set_active(_user(accounts, args), False)
    print(f"disabled {args.username!r}; their sessions have ended")
    return 0


def _enable(accounts: Accounts, args: argparse.Namespace) -> int:
    accounts.set_active(_user(accounts, args), True)
    print(f"enabled {args.username!r}")
    return 0


_ACTIONS = {"add": _add, "list": _list, "passwd": _passwd, "disable": _disable, "enable": _enable}
