"""``guardpost users``: people who use the web app and API, their role, scope, password and API token."""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from guardpost.cli import db_flags, session_for


class PasswordInputError(ValueError):
    """The password could not be read; the message says how to give it."""


def read_password(args: argparse.Namespace) -> str | None:
    """The new password from --password-file, stdin or the terminal; None with --no-password."""
    if args.no_password:
        return None
    if args.password_file:
        try:
            with open(args.password_file, encoding="utf-8") as handle:
                return handle.readline().rstrip("\r\n")
        except OSError as exc:
            raise PasswordInputError(f"cannot read --password-file {args.password_file}: {exc.strerror}") from None
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise PasswordInputError("give the password with --password-file, --password-stdin or at a terminal")
    first = getpass.getpass("new password: ")
    if first != getpass.getpass("again: "):
        raise PasswordInputError("the two passwords differ; nothing was changed")
    return first


def cmd_users_add(args: argparse.Namespace) -> int:
    from server.users import add_user

    password = read_password(args)
    with session_for(args) as session:
        user, token = add_user(
            session,
            args.name,
            args.role,
            company_id=args.company,
            jurisdiction=args.jurisdiction,
            site_ids=args.site,
            password=password,
        )
        session.commit()
        summary = {"name": user.name, "role": user.role, "token": token, "can_log_in": password is not None}
    if args.json:
        print(json.dumps(summary))
    else:
        login = "can log in to the web app" if password is not None else "API token only (no password)"
        print(f"created {user.role} {user.name}, {login}; API token (shown once): {token}")
    return 0


def cmd_users_passwd(args: argparse.Namespace) -> int:
    from sqlalchemy import delete

    from server.models import WebSession
    from server.users import get_user, set_password

    password = read_password(args)
    with session_for(args) as session:
        user = get_user(session, args.name)
        if password is None:
            user.password_hash = None
        else:
            set_password(user, password)
        # A changed password ends every open browser session of the user.
        session.execute(delete(WebSession).where(WebSession.user_id == user.id))
        session.commit()
    print(f"password of {args.name} {'removed' if password is None else 'changed'}; their browser sessions ended")
    return 0


def cmd_users_token(args: argparse.Namespace) -> int:
    from server.users import get_user, new_token

    with session_for(args) as session:
        token = new_token(get_user(session, args.name))
        session.commit()
    print(f"new API token for {args.name} (shown once; the old one no longer works): {token}")
    return 0


def cmd_users_disable(args: argparse.Namespace) -> int:
    from sqlalchemy import delete

    from server.models import WebSession
    from server.users import get_user

    with session_for(args) as session:
        user = get_user(session, args.name)
        user.disabled = args.action == "disable"
        session.execute(delete(WebSession).where(WebSession.user_id == user.id))
        session.commit()
    print(f"user {args.name} {'disabled: token and sessions refused' if user.disabled else 'enabled'}")
    return 0


def cmd_users_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from server.models import User
    from server.scope import scope_for

    with session_for(args) as session:
        rows = [
            {
                "name": user.name,
                "role": user.role,
                "scope": scope_for(user).describe(),
                "password": user.password_hash is not None,
                "disabled": user.disabled,
            }
            for user in session.scalars(select(User).order_by(User.name))
        ]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    for row in rows:
        flags = ("" if row["password"] else " [token only]") + (" [disabled]" if row["disabled"] else "")
        print(f"{row['name']:<24} {row['role']:<11} {row['scope']}{flags}")
    return 0


def _password_flags(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--password-file", help="read the password from the first line of this file")
    group.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    group.add_argument("--no-password", action="store_true", help="no web login: API token only")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    from server.users import ROLES

    users = sub.add_parser("users", help="users, their scope, passwords and API tokens")
    actions = users.add_subparsers(dest="action", required=True)
    p = actions.add_parser("add", help="create a user; prints an API token once")
    p.add_argument("name")
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--company", help="manager/supervisor: the company")
    p.add_argument("--jurisdiction", help="police: province code (44 or 440000) or name")
    p.add_argument("--site", action="append", default=[], help="supervisor: a site they supervise (repeatable)")
    _password_flags(p)
    p.add_argument("--json", action="store_true")
    db_flags(p)
    p.set_defaults(func=cmd_users_add)

    p = actions.add_parser("passwd", help="set (or with --no-password remove) a user's password")
    p.add_argument("name")
    _password_flags(p)
    db_flags(p)
    p.set_defaults(func=cmd_users_passwd)

    p = actions.add_parser("token", help="issue a new API token (the old one stops working)")
    p.add_argument("name")
    db_flags(p)
    p.set_defaults(func=cmd_users_token)

    for action, text in (("disable", "refuse the user's token and logins"), ("enable", "allow the user again")):
        p = actions.add_parser(action, help=text)
        p.add_argument("name")
        db_flags(p)
        p.set_defaults(func=cmd_users_disable)

    p = actions.add_parser("list", help="users with role and scope")
    p.add_argument("--json", action="store_true")
    db_flags(p)
    p.set_defaults(func=cmd_users_list)
