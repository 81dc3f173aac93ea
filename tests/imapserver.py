"""A private Dovecot IMAP server for the tests of the exchange mailbox ("correo de intercambio").

The session starts its own `dovecot -F -c <config>` (Debian's dovecot-imapd, installed by
`make system-packages`) on a free loopback port, with its own base_dir, state_dir and log, a
passwd-file per user with a known password, and Maildir++ mailboxes under a temporary directory.
The system's Dovecot, if any, is never touched. Plaintext LOGIN is allowed without TLS on
loopback; the same server also answers IMAPS and STARTTLS with a self-signed certificate
(`DovecotServer.cafile` trusts it).

Mail arrives as an MTA would deliver it: written into the maildir's `tmp/` and renamed into
`new/` (or into `cur/` with the S flag for an already read message); Dovecot notices it on the
next SELECT. Flags are read back over IMAP (EXAMINE, so reading them changes nothing).

As root (here and in CI) Dovecot will not open mail as uid 0, so the mail belongs to `nobody`
and the files written by `deliver` are handed to that user; Dovecot's own processes run as its
`dovecot`/`dovenull` users. As any other user everything runs as that user.

Fixtures: `imap_server` (the session's server) and `imap_account` (a fresh, empty account per
test). Tests that use them carry the `imap` marker: skipped when the dovecot binary is missing,
failed instead when REQUIRE_SERVICES=1 (tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import datetime
import grp
import imaplib
import ipaddress
import itertools
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

HOST = "127.0.0.1"
# A few accounts every session has; tests that need an empty mailbox take `imap_account`.
DEFAULT_USERS = {
    "recepcion": "clave-recepcion",
    "contabilidad": "clave-contabilidad",
    "proveedor": "clave-proveedor",
}
_STARTUP_TIMEOUT = 20.0


def dovecot_binary() -> str | None:
    """The dovecot executable, also when /usr/sbin is not on PATH (a non-root shell)."""
    found = shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/usr/local/sbin")
    return found


def dovecot_problem() -> str | None:
    """Why the `imap` tests cannot run here, or None: the check behind the marker."""
    if dovecot_binary() is None:
        return "dovecot is not installed (Debian's dovecot-imapd; make system-packages)"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class _Identity:
    """Who owns what: the mail's uid/gid, and Dovecot's internal and login users."""

    mail_user: str
    mail_uid: int
    mail_gid: int
    internal_user: str
    login_user: str

    @classmethod
    def for_this_process(cls) -> _Identity:
        if os.geteuid() != 0:
            me = pwd.getpwuid(os.geteuid())
            return cls(me.pw_name, me.pw_uid, me.pw_gid, me.pw_name, me.pw_name)
        nobody = pwd.getpwnam("nobody")
        return cls(
            nobody.pw_name,
            nobody.pw_uid,
            nobody.pw_gid,
            _existing_user("dovecot", "nobody"),
            _existing_user("dovenull", "nobody"),
        )


def _existing_user(*names: str) -> str:
    for name in names:
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError(f"none of the users {names} exists")


def _self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1/localhost that is its own CA: clients trust it as cafile."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "server.crt", directory / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


class DovecotServer:
    """One private Dovecot: `start()`, then `deliver`/`flags`/...; `stop()` at the end."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root or tempfile.mkdtemp(prefix="dovecot-test-"))
        self._own_root = root is None
        self.host = HOST
        self.port = 0
        self.imaps_port = 0
        self.users: dict[str, str] = {}
        self.identity = _Identity.for_this_process()
        self.cafile = self.root / "tls" / "server.crt"
        self.log_path = self.root / "dovecot.log"
        self.config_path = self.root / "dovecot.conf"
        self.mail_root = self.root / "mail"
        self.users_dir = self.root / "users"
        self.process: subprocess.Popen[bytes] | None = None
        self._names = itertools.count(1)

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> DovecotServer:
        if self.process is not None:
            raise RuntimeError("this DovecotServer is already started")
        binary = dovecot_binary()
        if binary is None:
            raise RuntimeError(dovecot_problem())
        version = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()
        if not version.startswith("2.3."):
            # 2.4 rewrote the configuration syntax (mail_driver, passdb blocks...).
            raise RuntimeError(f"tests/imapserver.py writes a Dovecot 2.3 config; found {version}")
        # Dovecot's own users must reach the config, the users file and the certificate.
        self.root.chmod(0o755)
        for sub in ("run", "state", "tls"):
            (self.root / sub).mkdir(exist_ok=True)
        self.mail_root.mkdir(exist_ok=True)
        self._own(self.mail_root)
        cert, key = _self_signed_certificate(self.root / "tls")
        self.users_dir.mkdir(exist_ok=True)
        for user, password in DEFAULT_USERS.items():
            self.add_user(user, password)
        self.port, self.imaps_port = free_port(), free_port()
        self.config_path.write_text(self._config(cert, key))
        stderr = (self.root / "stderr.log").open("wb")
        self.process = subprocess.Popen(
            [binary, "-F", "-c", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
        )
        stderr.close()
        try:
            self._wait_until_answering()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()  # the master stops its children and removes its pid file
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> DovecotServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log(self) -> str:
        parts = []
        for path in (self.root / "stderr.log", self.log_path):
            if path.exists():
                parts.append(path.read_text(errors="replace"))
        return "".join(parts)

    def _wait_until_answering(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + _STARTUP_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"dovecot exited with {self.process.returncode} while starting:\n{self.log()}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=2) as sock:
                    if sock.recv(100).startswith(b"* OK"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"dovecot did not answer on {self.host}:{self.port} within "
                    f"{_STARTUP_TIMEOUT:.0f}s:\n{self.log()}"
                )
            time.sleep(0.05)

    def _config(self, cert: Path, key: Path) -> str:
        ident = self.identity
        root = os.geteuid() == 0
        lines = [
            f"base_dir = {self.root / 'run'}",
            f"state_dir = {self.root / 'state'}",
            f"instance_name = test-{self.root.name}",
            f"log_path = {self.log_path}",
            "protocols = imap",
            f"listen = {self.host}",
            f"default_internal_user = {ident.internal_user}",
            f"default_login_user = {ident.login_user}",
            f"mail_uid = {ident.mail_uid}",
            f"mail_gid = {ident.mail_gid}",
            "first_valid_uid = 1",
            "first_valid_gid = 1",
            f"mail_location = maildir:{self.mail_root}/%u",
            "mail_fsync = never",
            # Plaintext LOGIN on loopback without TLS, and failed logins answered at once.
            "disable_plaintext_auth = no",
            "auth_mechanisms = plain login",
            "auth_failure_delay = 0",
            "auth_verbose = yes",
            "ssl = yes",
            f"ssl_cert = <{cert}",
            f"ssl_key = <{key}",
            "passdb {",
            "  driver = passwd-file",
            f"  args = scheme=PLAIN username_format=%u {self.users_dir}/%u",
            "}",
            "userdb {",
            "  driver = passwd-file",
            f"  args = username_format=%u {self.users_dir}/%u",
            "}",
            "service imap-login {",
            "  inet_listener imap {",
            f"    address = {self.host}",
            f"    port = {self.port}",
            "  }",
            "  inet_listener imaps {",
            f"    address = {self.host}",
            f"    port = {self.imaps_port}",
            "    ssl = yes",
            "  }",
            "}",
            # No anvil penalty socket: the auth process then adds no growing delay after
            # failed logins (the wrong-password tests would wait seconds each).
            "service anvil {",
            *([] if root else ["  chroot ="]),
            "  unix_listener anvil-auth-penalty {",
            "    mode = 0",
            "  }",
            "}",
        ]
        if not root:
            # Unprivileged: no chroots, and every service runs as this user.
            for service in ("imap-login", "ipc", "old-stats", "imap-urlauth-login"):
                lines += [f"service {service} {{", "  chroot =", "}"]
            lines.append(f"default_internal_group = {grp.getgrgid(os.getegid()).gr_name}")
            lines += ["service auth {", f"  user = {ident.internal_user}", "}"]
            lines += ["service auth-worker {", f"  user = {ident.internal_user}", "}"]
        return "\n".join(lines) + "\n"

    # --- accounts and mail -------------------------------------------------------------

    def add_user(self, username: str | None = None, password: str | None = None) -> ImapAccount:
        """A new account (a fresh, empty mailbox when `username` is left to us)."""
        username = username or f"buzon{next(self._names)}-{secrets.token_hex(3)}"
        password = password or f"clave-{secrets.token_hex(6)}"
        if username in self.users:
            raise ValueError(f"user {username} exists")
        # One passwd-file per user: Dovecot re-reads a changed file at most once a second, a
        # file it has not seen yet at once.
        entry = self.users_dir / username
        entry.write_text(f"{username}:{{PLAIN}}{password}::::::\n", encoding="utf-8")
        entry.chmod(0o644)
        self.users[username] = password
        return ImapAccount(self, username, password)

    def account(self, username: str) -> ImapAccount:
        return ImapAccount(self, username, self.users[username])

    def maildir(self, user: str, folder: str = "INBOX") -> Path:
        """The Maildir++ directory of `folder` (INBOX is the user's root, others are .Name)."""
        base = self.mail_root / user
        return base if folder.upper() == "INBOX" else base / f".{folder}"

    def deliver(
        self, user: str, raw_message: bytes, *, seen: bool = False, folder: str = "INBOX"
    ) -> int:
        """Drop a message into the maildir as an MTA does; returns the UID Dovecot gives it.

        Deliveries are meant to be sequential: the UID is the folder's highest after the
        delivery is noticed."""
        if user not in self.users:
            raise KeyError(user)
        box = self.maildir(user, folder)
        for path in (self.mail_root / user, box, box / "tmp", box / "new", box / "cur"):
            if not path.exists():
                path.mkdir()
                self._own(path)
        unique = f"{time.time_ns()}.P{os.getpid()}Q{next(self._names)}.{socket.gethostname()}"
        staged = box / "tmp" / unique
        staged.write_bytes(raw_message)
        self._own(staged)
        staged.rename(box / "cur" / f"{unique}:2,S" if seen else box / "new" / unique)
        with self.connect(user) as imap:
            _check(imap.select(_quote(folder), readonly=True), "SELECT")
            typ, data = imap.uid("SEARCH", "ALL")
            _check((typ, data), "UID SEARCH")
            return max(int(uid) for uid in data[0].split())

    def create_folder(self, user: str, folder: str) -> None:
        with self.connect(user) as imap:
            _check(imap.create(_quote(folder)), "CREATE")

    def flags(self, user: str, uid: int, *, folder: str = "INBOX") -> set[str]:
        """The message's flags (e.g. {"\\Seen"}), read without changing them."""
        with self.connect(user) as imap:
            _check(imap.select(_quote(folder), readonly=True), "EXAMINE")
            typ, data = imap.uid("FETCH", str(uid), "(FLAGS)")
            _check((typ, data), "UID FETCH")
            for item in data:
                if isinstance(item, bytes) and b"FLAGS" in item:
                    return {flag.decode() for flag in imaplib.ParseFlags(item)}
        raise KeyError(f"no message with UID {uid} in {user}'s {folder}")

    def seen_uids(self, user: str, *, folder: str = "INBOX") -> set[int]:
        return self._search(user, folder, "SEEN")

    def unseen_uids(self, user: str, *, folder: str = "INBOX") -> set[int]:
        return self._search(user, folder, "UNSEEN")

    def _search(self, user: str, folder: str, criterion: str) -> set[int]:
        with self.connect(user) as imap:
            _check(imap.select(_quote(folder), readonly=True), "EXAMINE")
            typ, data = imap.uid("SEARCH", criterion)
            _check((typ, data), "UID SEARCH")
            return {int(uid) for uid in data[0].split()}

    @contextlib.contextmanager
    def connect(self, user: str) -> Iterator[imaplib.IMAP4]:
        """A logged-in plaintext IMAP session as `user`."""
        imap = imaplib.IMAP4(self.host, self.port, timeout=10)
        credentials = f"\0{user}\0{self.users[user]}".encode()  # UTF-8, unlike LOGIN
        try:
            imap.authenticate("PLAIN", lambda _challenge: credentials)
            yield imap
        finally:
            with contextlib.suppress(imaplib.IMAP4.error, OSError):
                imap.logout()

    def _own(self, path: Path) -> None:
        if os.geteuid() == 0:
            os.chown(path, self.identity.mail_uid, self.identity.mail_gid)


def _check(result: tuple[str, list[object]], command: str) -> None:
    typ, data = result
    if typ != "OK":
        raise RuntimeError(f"{command} answered {typ}: {data!r}")


@dataclass(frozen=True)
class ImapAccount:
    """One account on the server, with the server's helpers bound to it."""

    server: DovecotServer
    username: str
    password: str

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    def deliver(self, raw_message: bytes, *, seen: bool = False, folder: str = "INBOX") -> int:
        return self.server.deliver(self.username, raw_message, seen=seen, folder=folder)

    def flags(self, uid: int, *, folder: str = "INBOX") -> set[str]:
        return self.server.flags(self.username, uid, folder=folder)

    def seen_uids(self, *, folder: str = "INBOX") -> set[int]:
        return self.server.seen_uids(self.username, folder=folder)

    def unseen_uids(self, *, folder: str = "INBOX") -> set[int]:
        return self.server.unseen_uids(self.username, folder=folder)

    def create_folder(self, folder: str) -> None:
        self.server.create_folder(self.username, folder)

    def connect(self) -> contextlib.AbstractContextManager[imaplib.IMAP4]:
        return self.server.connect(self.username)


def _require_dovecot() -> None:
    problem = dovecot_problem()
    if problem is None:
        return
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"REQUIRE_SERVICES=1 but imap is unavailable: {problem}")
    pytest.skip(problem)


@pytest.fixture(scope="session")
def imap_server() -> Iterator[DovecotServer]:
    """The session's private Dovecot (started on first use, stopped at the end)."""
    _require_dovecot()
    with DovecotServer() as server:
        yield server


@pytest.fixture
def imap_account(imap_server: DovecotServer) -> ImapAccount:
    """A fresh account with an empty INBOX on the session's Dovecot."""
    return imap_server.add_user()
