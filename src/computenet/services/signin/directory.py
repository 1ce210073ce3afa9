"""Sign-in against the centre's LDAP directory (auth.ldap): find the person's entry, bind as it with
the password typed, read their groups; ``provision`` (identity.py) then makes the platform user.

Whatever goes wrong on the person's side (no such entry, two of them, a wrong or empty password) is
one answer, so that nobody can learn from it who has an entry. Whatever goes wrong on the
directory's side (down, slow, TLS, nonsense, the search account refused) is ProviderDown, naming
the address and the reason, for the operator.
"""

from __future__ import annotations

import math
import re
import ssl
from collections.abc import Iterator
from contextlib import contextmanager

import ldap3
from ldap3.core import exceptions as ldap_errors
from ldap3.utils.conv import escape_filter_chars

from ...config import LdapConfig
from ...messages import msg
from .identity import ExternalUser, ProviderDown, SignInRefused

REFUSED = msg("unknown user or wrong password")  # as login.WRONG
MAX_LOGIN = 256  # longer is no one's login; refused before the directory sees it
MAX_GROUPS = 1000
# bind results that mean "not with this password" (49), or a directory policy refusing the person
# (50, 53: e.g. a locked or expired account); anything else is the directory's problem
PERSON_REFUSED = {49, 50, 53}


class _Unreachable(Exception):
    """This address did not serve us; the message is the short reason. The next address is tried.

    ``answered``: it did talk LDAP but refused or failed what we asked (a configuration problem, most likely).
    """

    def __init__(self, reason: str, answered: bool = False) -> None:
        super().__init__(reason)
        self.answered = answered


def authenticate(config: LdapConfig, login: str, password: str) -> ExternalUser:
    """The directory's word on ``login``/``password``: an ExternalUser, SignInRefused or ProviderDown."""
    # an empty password makes an LDAP simple bind "unauthenticated", which servers answer with success
    if not password or not login or len(login) > MAX_LOGIN or "\x00" in login + password:
        raise SignInRefused(REFUSED, "bad_password")
    urls = config.url.split()
    failures: list[tuple[str, _Unreachable]] = []
    for url in urls:  # in turn: the first that answers decides (a refusal there is final)
        try:
            return _authenticate_at(config, url, login, password)
        except _Unreachable as exc:
            failures.append((url, exc))
    if len(failures) == 1:
        url, exc = failures[0]
        raise ProviderDown(f"the directory at {url} " + ("answered but cannot be used" if exc.answered
                                                         else "cannot be reached") + f": {exc}")
    raise ProviderDown(f"the directory at {', '.join(urls)} cannot be reached: "
                       + "; ".join(f"{url}: {exc}" for url, exc in failures))


def _authenticate_at(config: LdapConfig, url: str, login: str, password: str) -> ExternalUser:
    server = _server(config, url)
    searcher = _connect(config, server, config.bind_dn, config.bind_password or "")
    try:
        if config.bind_dn:
            _bind_service(config, searcher)
        uid_attribute = _login_attribute(config.user_filter)
        wanted = [uid_attribute, config.display_name_attribute, config.email_attribute]
        found = _search(config, searcher, config.user_base, _fill(config.user_filter, login=login), wanted, limit=2)
        if len(found) != 1:
            _decoy_bind(config, server, password)
            raise SignInRefused(REFUSED, "bad_password")
        dn, attributes = found[0]
        _check_password(config, server, dn, password)
        spelled = _directory_login(attributes.get(uid_attribute.lower(), []), login)
        groups: list[str] = []
        if config.group_base:
            group_filter = _fill(config.group_filter, login=spelled, dn=dn)
            for _, group in _search(config, searcher, config.group_base, group_filter, [config.group_name_attribute],
                                    limit=MAX_GROUPS):
                groups.append(_first(group, config.group_name_attribute))
        return ExternalUser(provider="ldap", subject=spelled.lower(), login=spelled,
                            display_name=_first(attributes, config.display_name_attribute),
                            email=_first(attributes, config.email_attribute) or None, email_verified=True,
                            groups=tuple(dict.fromkeys(g for g in groups if g)))
    finally:
        _close(searcher)


def _server(config: LdapConfig, url: str) -> ldap3.Server:
    tls = None
    if url.lower().startswith("ldaps://") or config.start_tls:
        try:
            tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=config.ca_file)
        except ldap_errors.LDAPException as exc:
            raise _Unreachable(f"the CA file {config.ca_file} cannot be used ({exc})") from exc
    try:
        return ldap3.Server(url, use_ssl=url.lower().startswith("ldaps://"), tls=tls,
                            connect_timeout=config.timeout_s, get_info=ldap3.NONE)
    except ldap_errors.LDAPException as exc:
        raise _Unreachable(f"not a usable LDAP address ({exc})") from exc


def _connect(config: LdapConfig, server: ldap3.Server, user: str | None, password: str) -> ldap3.Connection:
    """An open connection (StartTLS done when configured), not yet bound; closed again if that fails."""
    conn = None
    try:
        with _talking(config.timeout_s):
            # ldap3 packs receive_timeout into SO_RCVTIMEO as whole seconds: a float there is an error;
            # referrals are not followed: that would send the credentials to whatever server they name
            conn = ldap3.Connection(server, user=user, password=password or None,
                                    receive_timeout=max(1, math.ceil(config.timeout_s)), auto_referrals=False,
                                    auto_bind=ldap3.AUTO_BIND_NONE, raise_exceptions=False, read_only=True)
            conn.open()
            if config.start_tls and not server.ssl:
                conn.start_tls()
    except _Unreachable:
        if conn is not None:
            _close(conn)
        raise
    return conn


@contextmanager
def _talking(timeout: float) -> Iterator[None]:
    """Turns the ways a conversation with the directory fails into _Unreachable with a short reason."""
    try:
        yield
    except (SignInRefused, _Unreachable):
        raise
    except Exception as exc:  # ldap3 decoding something that is not LDAP fails in assorted ways
        raise _Unreachable(_reason(exc, timeout),
                           answered=isinstance(exc, ldap_errors.LDAPInvalidFilterError)) from exc


def _reason(exc: BaseException, timeout: float) -> str:
    text = str(exc)
    if isinstance(exc, ldap_errors.LDAPInvalidFilterError):
        return f"a configured filter is not an LDAP filter ({text[:120]}): check auth.ldap"
    tls = _TLS_DETAIL.search(text)
    if isinstance(exc, ldap_errors.LDAPStartTLSError):
        return f"StartTLS failed ({tls.group(1).strip() if tls else text.removeprefix('startTLS failed - ')[:200]})"
    if tls or isinstance(exc, (ssl.SSLError, ldap_errors.LDAPSSLConfigurationError)):
        return f"TLS failed ({tls.group(1).strip() if tls else text[:200]})"
    if "timed out" in text.lower() or isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s"
    if "refused" in text.lower():
        return "connection refused"
    if isinstance(exc, ldap_errors.LDAPCertificateError):
        return "TLS failed (the certificate is not for this host name)"
    if isinstance(exc, ldap_errors.LDAPSocketOpenError):
        return text.removeprefix("socket connection error while opening: ")[:200] or "cannot connect"
    if isinstance(exc, (ldap_errors.LDAPSessionTerminatedByServerError, ldap_errors.LDAPSocketReceiveError)):
        return f"the connection broke ({text[:200]})"
    return f"it did not answer as an LDAP server ({type(exc).__name__}: {text[:120]})"


# what ssl says inside ldap3's wrapping: "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: ..."
_TLS_DETAIL = re.compile(r"\[(?:SSL|X509)[^\]]*\]\s*([^(')\"]+)")


def _bind_service(config: LdapConfig, conn: ldap3.Connection) -> None:
    if not config.bind_password:  # ldap3 would refuse the bind itself, less clearly
        raise _Unreachable(f"auth.ldap.bind_dn is {config.bind_dn} but bind_password is not set", answered=True)
    with _talking(config.timeout_s):
        ok = conn.bind()
    if not ok:
        raise _Unreachable(f"it refused the search account {config.bind_dn} ({conn.result.get('description')}): "
                           "check auth.ldap.bind_dn and bind_password", answered=True)


def _search(config: LdapConfig, conn: ldap3.Connection, base: str, search_filter: str, attributes: list[str],
            limit: int) -> list[tuple[str, dict]]:
    with _talking(config.timeout_s):
        conn.search(base, search_filter, search_scope=ldap3.SUBTREE, attributes=attributes, size_limit=limit)
    code = conn.result.get("result")
    if code == 32:  # noSuchObject: the configured base is not in this directory
        raise _Unreachable(f"it has no entry {base} (check auth.ldap.user_base and group_base)", answered=True)
    if code not in (0, 4):  # 4: sizeLimitExceeded still brings the first entries, enough to see "two"
        raise _Unreachable(f"the search under {base} failed ({conn.result.get('description')}: "
                           f"{str(conn.result.get('message'))[:120]})", answered=True)
    # attribute names are case-insensitive (mail, Mail): keyed here in lower case
    return [(item["dn"], {name.lower(): value for name, value in (item.get("attributes") or {}).items()})
            for item in conn.response or [] if item.get("type") == "searchResEntry"]


def _check_password(config: LdapConfig, server: ldap3.Server, dn: str, password: str) -> None:
    """A bind as the person's entry, on a connection of its own (the search one keeps its rights)."""
    conn = _connect(config, server, dn, password)
    try:
        with _talking(config.timeout_s):
            ok = conn.bind()
        if ok:
            return
        code = conn.result.get("result")
        if code in PERSON_REFUSED:
            raise SignInRefused(REFUSED, "bad_password")
        raise _Unreachable(f"the bind failed ({conn.result.get('description')})", answered=True)
    finally:
        _close(conn)


def _decoy_bind(config: LdapConfig, server: ldap3.Server, password: str) -> None:
    """A bind to an entry that does not exist, so that the time an unknown login takes does not tell
    it from a wrong password. Whatever it answers, the caller refuses."""
    try:
        _check_password(config, server, f"cn=no such entry,{config.user_base}", password)
    except (SignInRefused, _Unreachable):
        pass


def _close(conn: ldap3.Connection) -> None:
    try:
        conn.unbind()
    except Exception:  # closing a broken connection: nothing left to tell anyone
        pass


def _fill(template: str, **values: str) -> str:
    """The filter with {login} / {dn} replaced, LDAP-escaped (str.format would trip on other braces)."""
    for name, value in values.items():
        template = template.replace("{" + name + "}", escape_filter_chars(value))
    return template


def _login_attribute(user_filter: str) -> str:
    """The attribute user_filter matches the login against: uid, sAMAccountName ..."""
    match = re.search(r"\(\s*([A-Za-z][\w-]*)\s*=\s*\{login\}\s*\)", user_filter)
    return match.group(1) if match else "uid"


def _directory_login(values: list, typed: str) -> str:
    """The login as the directory spells it (the value matching what was typed, else the first)."""
    spelled = [str(v) for v in (values if isinstance(values, list) else [values])]
    for value in spelled:
        if value.strip().lower() == typed.strip().lower():
            return value.strip()
    return spelled[0].strip() if spelled else typed.strip()


def _first(attributes: dict, name: str) -> str:
    value = attributes.get(name.lower())
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value or "").strip()
