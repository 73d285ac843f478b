"""gunicorn settings for the GuardPost web app: ``gunicorn -c deploy/gunicorn.conf.py server.wsgi:app``."""

import os
import sys


def _int(name: str, default: int, low: int, high: int) -> int:
    raw = os.environ.get(name, str(default))
    if not raw.isdigit() or not low <= int(raw) <= high:
        sys.exit(f"error: {name} must be a whole number from {low} to {high}, got {raw!r}")
    return int(raw)


bind = os.environ.get("GUARDPOST_BIND", "127.0.0.1:8080")
# Threads, not more processes: requests wait on the database, and each worker keeps its own pool.
worker_class = "gthread"
workers = _int("GUARDPOST_WEB_WORKERS", 2, 1, 64)
threads = _int("GUARDPOST_WEB_THREADS", 4, 1, 64)
timeout = 60
graceful_timeout = 20
keepalive = 5
# Recycle workers now and then, each at its own moment, to bound slow leaks.
max_requests = 100000
max_requests_jitter = 10000
# Standard output and error: journald keeps them (no log files to rotate).
accesslog = "-"
errorlog = "-"
# X-Forwarded-* are believed only from the reverse proxy that terminates TLS.
forwarded_allow_ips = os.environ.get("GUARDPOST_TRUSTED_PROXIES", "127.0.0.1")
limit_request_line = 8190
limit_request_fields = 100
# gunicorn 25+ opens a control socket in $HOME by default; systemctl reload (HUP) is all we use.
control_socket_disable = True


def on_starting(server):
    """Settings and schema are checked once here, so a mistake is one line and not one per worker."""
    from server.web_boot import prepare

    prepare()
