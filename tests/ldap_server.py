"""A real OpenLDAP slapd for the sign-in tests: Debian's ``slapd`` (apt-get install slapd ldap-utils),
run as a child process on 127.0.0.1 with free ports (ldap:// with StartTLS, and ldaps://), its
configuration, mdb database and a throw-away CA (openssl) in a temporary directory, loaded with a
small directory (slapadd) before it starts.

The directory (suffix dc=example,dc=org):

    cn=admin,dc=example,dc=org          rootdn, password ADMIN_PASSWORD
    cn=reader,dc=example,dc=org         a service account for searches, password READER_PASSWORD
    ou=people: alice, bob, carol, Dave (uid spelled with a capital), erin; passwords in PASSWORDS
    ou=contractors: a second erin (the same uid twice under dc=example,dc=org)
    ou=groups: groupOfNames physics (alice, bob), ops (carol); posixGroup hpc (memberUid alice, carol)

ACLs: anyone may search and read everything but userPassword, which is only good for binding.

    server = Slapd(tmp_dir); server.start(); ...; server.stop()

or, in tests, the session fixture ``slapd`` in conftest.py (see ``slapd_fixture``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

SUFFIX = "dc=example,dc=org"
ADMIN_DN = f"cn=admin,{SUFFIX}"
ADMIN_PASSWORD = "admin-secret"
READER_DN = f"cn=reader,{SUFFIX}"
READER_PASSWORD = "reader-secret"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
PASSWORDS = {"alice": "Wonderland-1", "bob": "Builder-22", "carol": "Carol(*)Pass", "Dave": "dave-pw-4",
             "erin": "erin-pw-5"}
PEOPLE_DETAILS = {  # uid: (cn, mail)
    "alice": ("Alice Liddell", "alice@example.org"),
    "bob": ("Bob Builder", "bob@example.org"),
    "carol": ("Carol Danvers", "carol@example.org"),
    "Dave": ("Dave Miller", "dave@example.org"),
    "erin": ("Erin People", "erin@example.org"),
}
GROUP_MEMBERS = {"physics": ("alice", "bob"), "ops": ("carol",)}  # groupOfNames, by uid
POSIX_GROUP_MEMBERS = {"hpc": ("alice", "carol")}  # posixGroup memberUid

SLAPD = shutil.which("slapd") or "/usr/sbin/slapd"
SCHEMAS = ("core", "cosine", "inetorgperson", "nis")


def person_dn(uid: str) -> str:
    return f"uid={uid},{PEOPLE}"


def group_dn(name: str) -> str:
    return f"cn={name},{GROUPS}"


def available() -> str | None:
    """Why slapd cannot run here, or None when it can."""
    for tool in (SLAPD, shutil.which("slapadd") or "/usr/sbin/slapadd",
                 shutil.which("slappasswd") or "/usr/sbin/slappasswd", shutil.which("openssl") or "/usr/bin/openssl"):
        if not os.path.exists(tool):
            return f"{tool} is missing (apt-get install slapd ldap-utils)"
    if not os.path.exists("/etc/ldap/schema/inetorgperson.schema"):
        return "the OpenLDAP schemas are missing (/etc/ldap/schema; apt-get install slapd)"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _ssha(password: str) -> str:
    return subprocess.run(["slappasswd", "-h", "{SSHA}", "-s", password], check=True, capture_output=True,
                          text=True).stdout.strip()


class Slapd:
    """One slapd with its own directory under ``base``; ``start`` loads the data the first time."""

    def __init__(self, base: Path, port: int | None = None) -> None:
        self.base = Path(base)
        self.port = port or _free_port()
        self.host = "127.0.0.1"
        self.url = f"ldap://{self.host}:{self.port}"  # plain, and StartTLS
        self.tls_port = _free_port()
        self.ldaps_url = f"ldaps://{self.host}:{self.tls_port}"
        self.ca_file = str(self.base / "ca.pem")  # the CA that signed the server's certificate (for 127.0.0.1)
        self.process: subprocess.Popen | None = None
        self.started_in_s: float | None = None  # how long the last start took, to the first answer

    # -- life cycle -------------------------------------------------------------

    def start(self, timeout: float = 20.0) -> "Slapd":
        if not (self.base / "slapd.conf").exists():
            self._configure()
        began = time.monotonic()
        log = open(self.base / "slapd.log", "ab")
        # -d keeps slapd in the foreground (our child, stopped with us); level 0 logs only what goes wrong
        self.process = subprocess.Popen([SLAPD, "-d", "0", "-f", str(self.base / "slapd.conf"),
                                         "-h", f"ldap://{self.host}:{self.port}/ {self.ldaps_url}/"],
                                        stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = began + timeout
        while not self._answers():
            if self.process.poll() is not None:
                raise RuntimeError(f"slapd exited with {self.process.returncode}: {self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"slapd did not answer on {self.url} within {timeout:.0f} s: {self.log_tail()}")
            time.sleep(0.05)
        self.started_in_s = time.monotonic() - began
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, chars: int = 2000) -> str:
        path = self.base / "slapd.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def _answers(self) -> bool:
        """An anonymous search of the suffix succeeds (a connect alone may come before the database is open)."""
        import ldap3

        try:
            conn = ldap3.Connection(ldap3.Server(self.host, port=self.port, connect_timeout=1), receive_timeout=1,
                                    auto_bind=ldap3.AUTO_BIND_NONE)
            conn.open()
            try:
                return conn.search(SUFFIX, "(objectClass=*)", search_scope=ldap3.BASE)
            finally:
                conn.unbind()
        except Exception:
            return False

    # -- configuration and data -------------------------------------------------

    def _configure(self) -> None:
        data = self.base / "data"
        data.mkdir(parents=True, exist_ok=True)
        self._make_certificates()
        includes = "".join(f"include /etc/ldap/schema/{name}.schema\n" for name in SCHEMAS)
        (self.base / "slapd.conf").write_text(
            f"{includes}"
            f"TLSCACertificateFile {self.ca_file}\nTLSCertificateFile {self.base / 'server.pem'}\n"
            f"TLSCertificateKeyFile {self.base / 'server.key'}\n"
            f"pidfile {self.base / 'slapd.pid'}\nargsfile {self.base / 'slapd.args'}\n"
            "modulepath /usr/lib/ldap\nmoduleload back_mdb\n"
            f'database mdb\nmaxsize 33554432\nsuffix "{SUFFIX}"\nrootdn "{ADMIN_DN}"\n'
            f"rootpw {_ssha(ADMIN_PASSWORD)}\ndirectory {data}\n"
            # passwords are for binding only; everything else anyone may read (anonymous search)
            "access to attrs=userPassword\n  by self write\n  by anonymous auth\n  by * none\n"
            "access to *\n  by * read\n")
        (self.base / "directory.ldif").write_text(self._ldif())
        result = subprocess.run(["slapadd", "-f", str(self.base / "slapd.conf"), "-l",
                                 str(self.base / "directory.ldif")], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"slapadd failed: {result.stderr[-2000:]}")

    def _make_certificates(self) -> None:
        """A throw-away CA and a certificate it signs for 127.0.0.1 and localhost (openssl)."""
        def openssl(*args: str) -> None:
            result = subprocess.run(["openssl", *args], cwd=self.base, capture_output=True, text=True)
            if result.returncode != 0:
                raise RuntimeError(f"openssl {args[0]} failed: {result.stderr[-1000:]}")

        ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
        openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "7",
                "-subj", "/CN=ComputeNet test CA")
        openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
        (self.base / "server.ext").write_text("subjectAltName = IP:127.0.0.1, DNS:localhost\n"
                                              "extendedKeyUsage = serverAuth\n")
        openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", "server.pem", "-days", "7", "-extfile", "server.ext")

    def _ldif(self) -> str:
        entries = [
            f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example Centre\n",
            f"dn: {READER_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: reader\n"
            f"userPassword: {_ssha(READER_PASSWORD)}\n",
            f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n",
            f"dn: ou=contractors,{SUFFIX}\nobjectClass: organizationalUnit\nou: contractors\n",
            f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n",
        ]
        for number, (uid, (cn, mail)) in enumerate(PEOPLE_DETAILS.items()):
            entries.append(f"dn: {person_dn(uid)}\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n"
                           f"uid: {uid}\ncn: {cn}\nsn: {cn.split()[-1]}\nmail: {mail}\n"
                           f"uidNumber: {20001 + number}\ngidNumber: 20000\nhomeDirectory: /home/{uid}\n"
                           f"userPassword: {_ssha(PASSWORDS[uid])}\n")
        entries.append(f"dn: uid=erin,ou=contractors,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: erin\n"
                       f"cn: Erin Contractor\nsn: Contractor\nuserPassword: {_ssha(PASSWORDS['erin'])}\n")
        for name, members in GROUP_MEMBERS.items():
            entries.append(f"dn: {group_dn(name)}\nobjectClass: groupOfNames\ncn: {name}\n"
                           + "".join(f"member: {person_dn(uid)}\n" for uid in members))
        for number, (name, members) in enumerate(POSIX_GROUP_MEMBERS.items()):
            entries.append(f"dn: {group_dn(name)}\nobjectClass: posixGroup\ncn: {name}\n"
                           f"gidNumber: {30001 + number}\n" + "".join(f"memberUid: {uid}\n" for uid in members))
        return "\n".join(entries)

    # -- changing the directory while it runs (as the rootdn) -------------------

    def admin(self):
        """An ldap3 connection bound as the rootdn (close it with ``unbind``)."""
        import ldap3

        return ldap3.Connection(ldap3.Server(self.host, port=self.port, connect_timeout=5), ADMIN_DN,
                                ADMIN_PASSWORD, receive_timeout=5, auto_bind=ldap3.AUTO_BIND_NO_TLS,
                                raise_exceptions=True)

    def set_group_members(self, group: str, uids: tuple[str, ...] | list[str]) -> None:
        """Replace a groupOfNames' members (at least one: the schema requires it)."""
        import ldap3

        conn = self.admin()
        try:
            conn.modify(group_dn(group), {"member": [(ldap3.MODIFY_REPLACE, [person_dn(uid) for uid in uids])]})
        finally:
            conn.unbind()

    def reset_groups(self) -> None:
        """Back to the membership the directory started with."""
        for group, members in GROUP_MEMBERS.items():
            self.set_group_members(group, members)

    # -- a configuration pointing at this server ---------------------------------

    def ldap_config(self, **overrides):
        from computenet.config import LdapConfig

        values = {"url": self.url, "user_base": PEOPLE, "group_base": GROUPS, "timeout_s": 3.0}
        return LdapConfig(**(values | overrides))


def slapd_fixture(tmp_path_factory):
    """Body of the session fixture ``slapd``: a started Slapd, stopped at the end. Without slapd
    installed it skips, except under CI=true, where that fails; a slapd that will not start fails."""
    import pytest

    missing = available()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but slapd cannot run: {missing}")
        pytest.skip(f"no slapd here: {missing}")
    server = Slapd(tmp_path_factory.mktemp("slapd"))
    try:
        server.start()
    except RuntimeError as exc:  # installed but broken: a failure wherever it happens (as sshd's)
        pytest.fail(f"slapd did not start: {exc}")
    yield server
    server.stop()
