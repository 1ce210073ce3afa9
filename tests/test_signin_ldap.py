"""LDAP sign-in (services/signin/directory.py) against a real slapd (tests/ldap_server.py), and what
provision() makes of the directory's answer: the user, their tenant and roles, kept in step with
the groups at every sign-in."""

from __future__ import annotations

import socket
import threading

import pytest
from sqlalchemy import select

import ldap_server
from computenet.config import GroupMapping, LdapConfig
from computenet.services import audit
from computenet.services.tenancy import tenants, users
from computenet.services.signin.directory import authenticate
from computenet.services.signin.identity import ProviderDown, SignInRefused, check_mappings, provision
from computenet.store.admin_models import AuditEvent, RoleGrant
from computenet.store.auth_models import ExternalIdentity
from computenet.store.models import Tenant, User

PW = ldap_server.PASSWORDS
REFUSED = "unknown user or wrong password"


def refused(config, login: str, password: str) -> SignInRefused:
    with pytest.raises(SignInRefused) as caught:
        authenticate(config, login, password)
    return caught.value


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- the directory's answer ----------------------------------------------------

def test_good_password_gives_the_person_with_groups_mail_and_name(slapd):
    who = authenticate(slapd.ldap_config(), "alice", PW["alice"])
    assert who.provider == "ldap" and who.subject == "alice" and who.login == "alice"
    assert who.display_name == "Alice Liddell"
    assert who.email == "alice@example.org" and who.email_verified is True
    # groupOfNames member= and posixGroup memberUid= both count (the default group_filter)
    assert set(who.groups) == {"physics", "hpc"}


def test_login_is_the_directory_spelling_and_subject_lower_case(slapd):
    who = authenticate(slapd.ldap_config(), "DAVE", PW["Dave"])  # uid matching ignores case
    assert who.login == "Dave" and who.subject == "dave"
    assert who.groups == ()


def test_search_through_a_service_account(slapd):
    config = slapd.ldap_config(bind_dn=ldap_server.READER_DN, bind_password=ldap_server.READER_PASSWORD)
    assert authenticate(config, "bob", PW["bob"]).groups == ("physics",)


def test_configured_group_filter_and_attributes(slapd):
    config = slapd.ldap_config(group_filter="(&(objectClass=posixGroup)(memberUid={login}))",
                               display_name_attribute="sn", email_attribute="description")
    who = authenticate(config, "alice", PW["alice"])
    assert who.groups == ("hpc",) and who.display_name == "Liddell" and who.email is None


def test_no_group_base_means_no_groups(slapd):
    assert authenticate(slapd.ldap_config(group_base=None), "carol", PW["carol"]).groups == ()


def test_password_with_filter_characters_is_only_a_password(slapd):
    assert authenticate(slapd.ldap_config(), "carol", "Carol(*)Pass").subject == "carol"


@pytest.mark.parametrize("login,password", [
    ("alice", "not-her-password"),
    ("alice", PW["bob"]),
    ("nobody", "whatever-1"),
    ("alice", ""),  # an "unauthenticated bind" would succeed: refused before any bind
])
def test_wrong_unknown_or_empty_all_get_the_same_refusal(slapd, login, password):
    problem = refused(slapd.ldap_config(), login, password)
    assert str(problem) == REFUSED and problem.reason == "bad_password"


def test_empty_password_never_reaches_the_directory():
    # the port is closed: reaching for the directory would be ProviderDown, not this refusal
    config = LdapConfig(url=f"ldap://127.0.0.1:{closed_port()}", user_base=ldap_server.PEOPLE, timeout_s=1)
    problem = refused(config, "alice", "")
    assert problem.reason == "bad_password"


@pytest.mark.parametrize("login", ["ali*", "*", "a*e", "alice)(uid=*", ")(uid=*", "*)(|(uid=*", "alice\\"])
def test_filter_metacharacters_in_the_login_match_no_one(slapd, login):
    # unescaped, "ali*" / "a*e" would find alice alone and her password would let them in;
    # ")(uid=*" would make the filter invalid (a ProviderDown, not a refusal)
    problem = refused(slapd.ldap_config(), login, PW["alice"])
    assert str(problem) == REFUSED and problem.reason == "bad_password"


def test_two_entries_for_one_login_are_refused(slapd):
    # erin is under ou=people and ou=contractors: binding to "the first" could be the wrong person
    whole_tree = slapd.ldap_config(user_base=ldap_server.SUFFIX)
    assert refused(whole_tree, "erin", PW["erin"]).reason == "bad_password"
    assert authenticate(slapd.ldap_config(), "erin", PW["erin"]).display_name == "Erin People"


@pytest.mark.parametrize("login,password", [("a" * 300, "whatever-1"), ("alice\x00", "whatever-1"),
                                            ("alice", "pass\x00word")])
def test_overlong_login_or_nul_is_refused_without_asking_the_directory(login, password):
    # the port is closed: asking the directory would be ProviderDown, not this refusal
    config = LdapConfig(url=f"ldap://127.0.0.1:{closed_port()}", user_base=ldap_server.PEOPLE, timeout_s=1)
    assert refused(config, login, password).reason == "bad_password"


# -- when the directory is not there, or not right ---------------------------------

def test_stopped_slapd_is_provider_down_naming_the_address(tmp_path):
    server = ldap_server.Slapd(tmp_path).start()
    config = server.ldap_config(timeout_s=1)
    assert authenticate(config, "bob", PW["bob"]).subject == "bob"
    server.stop()
    with pytest.raises(ProviderDown) as caught:
        authenticate(config, "bob", PW["bob"])
    assert str(caught.value) == f"the directory at {server.url} cannot be reached: connection refused"


def test_a_silent_server_times_out(slapd):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)  # connects succeed (the kernel's backlog), nothing ever answers
    try:
        url = f"ldap://127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(ProviderDown) as caught:
            authenticate(slapd.ldap_config(url=url, timeout_s=1), "bob", PW["bob"])
        assert str(caught.value) == f"the directory at {url} cannot be reached: no answer within 1 s"
    finally:
        listener.close()


def test_a_server_that_is_not_ldap_is_provider_down(slapd):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)

    def answer_like_http():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    threading.Thread(target=answer_like_http, daemon=True).start()
    try:
        url = f"ldap://127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(ProviderDown) as caught:
            authenticate(slapd.ldap_config(url=url, timeout_s=1), "bob", PW["bob"])
        assert str(caught.value).startswith(f"the directory at {url} cannot be reached: ")
    finally:
        listener.close()


def test_several_addresses_are_tried_in_turn(slapd):
    dead = f"ldap://127.0.0.1:{closed_port()}"
    assert authenticate(slapd.ldap_config(url=f"{dead} {slapd.url}"), "bob", PW["bob"]).subject == "bob"
    also_dead = f"ldap://127.0.0.1:{closed_port()}"
    with pytest.raises(ProviderDown) as caught:
        authenticate(slapd.ldap_config(url=f"{dead} {also_dead}", timeout_s=1), "bob", PW["bob"])
    assert str(caught.value) == (f"the directory at {dead}, {also_dead} cannot be reached: "
                                 f"{dead}: connection refused; {also_dead}: connection refused")


def test_a_refusal_at_the_first_address_is_final(slapd):
    dead = f"ldap://127.0.0.1:{closed_port()}"
    assert refused(slapd.ldap_config(url=f"{slapd.url} {dead}"), "bob", "wrong-1").reason == "bad_password"


def test_search_account_refused_is_provider_down_not_the_persons_fault(slapd):
    config = slapd.ldap_config(bind_dn=ldap_server.READER_DN, bind_password="not-the-password")
    with pytest.raises(ProviderDown) as caught:
        authenticate(config, "bob", PW["bob"])
    assert "answered but cannot be used" in str(caught.value)
    assert f"it refused the search account {ldap_server.READER_DN}" in str(caught.value)


def test_search_account_without_its_password_is_provider_down(slapd):
    problem = f"auth.ldap.bind_dn is {ldap_server.READER_DN} but bind_password is not set"
    with pytest.raises(ProviderDown, match=problem):
        authenticate(slapd.ldap_config(bind_dn=ldap_server.READER_DN), "bob", PW["bob"])


def test_a_user_base_not_in_the_directory_is_provider_down(slapd):
    with pytest.raises(ProviderDown, match="it has no entry ou=nowhere,dc=example,dc=org"):
        authenticate(slapd.ldap_config(user_base="ou=nowhere,dc=example,dc=org"), "bob", PW["bob"])


def test_a_broken_user_filter_is_provider_down(slapd):
    with pytest.raises(ProviderDown, match="a configured filter is not an LDAP filter"):
        authenticate(slapd.ldap_config(user_filter="(uid={login}"), "bob", PW["bob"])


@pytest.mark.parametrize("how", ["start_tls", "ldaps"])
def test_tls_with_the_directory_ca(slapd, how):
    config = (slapd.ldap_config(start_tls=True, ca_file=slapd.ca_file) if how == "start_tls"
              else slapd.ldap_config(url=slapd.ldaps_url, ca_file=slapd.ca_file))
    assert authenticate(config, "bob", PW["bob"]).groups == ("physics",)


@pytest.mark.parametrize("how", ["start_tls", "ldaps"])
def test_tls_with_a_certificate_no_trusted_ca_signed_is_provider_down(slapd, how):
    # the system's CAs do not know the test CA: the certificate must be checked, never just accepted
    config = slapd.ldap_config(start_tls=True) if how == "start_tls" else slapd.ldap_config(url=slapd.ldaps_url)
    with pytest.raises(ProviderDown) as caught:
        authenticate(config, "bob", PW["bob"])
    step = "StartTLS" if how == "start_tls" else "TLS"
    assert str(caught.value).startswith(f"the directory at {config.url} cannot be reached: {step} failed "
                                        "(certificate verify failed")


def test_an_unreadable_ca_file_is_provider_down(slapd, tmp_path):
    with pytest.raises(ProviderDown, match=f"the CA file {tmp_path / 'none.pem'} cannot be used"):
        authenticate(slapd.ldap_config(start_tls=True, ca_file=str(tmp_path / "none.pem")), "bob", PW["bob"])


# -- provision(): the platform user the directory's answer makes -------------------

MAPPINGS = [
    GroupMapping(group="physics", tenant="physics-inst", roles=["tenant_admin"]),
    GroupMapping(group="ops", roles=["operator"]),
]


@pytest.fixture
def physics_tenant(clean_db):
    with clean_db.session() as session:
        tenants.create_tenant(session, "physics-inst", "university")
    return clean_db


def sign_in(db, config, login: str, password: str, mappings=MAPPINGS, create_users: bool = True) -> int:
    who = authenticate(config, login, password)
    with db.session() as session:
        return provision(session, who, mappings, create_users=create_users, client="127.0.0.1").id


def roles_of(db, name: str) -> set[tuple[str, str | None, str]]:
    with db.session() as session:
        user = session.scalar(select(User).where(User.name == name))
        tenant_names = dict(session.execute(select(Tenant.id, Tenant.name)).all())
        return {(g.role, tenant_names.get(g.tenant_id), g.granted_by)
                for g in session.scalars(select(RoleGrant).where(RoleGrant.user_id == user.id))}


def audit_actions(db, name: str) -> list[tuple[str, str]]:
    with db.session() as session:
        return [(e.actor, e.action) for e in session.scalars(
            select(AuditEvent).where(AuditEvent.target == f"user:{name}").order_by(AuditEvent.id))]


def test_first_sign_in_creates_the_user_in_the_mapped_tenant(slapd, physics_tenant):
    db = physics_tenant
    user_id = sign_in(db, slapd.ldap_config(), "alice", PW["alice"])
    with db.session() as session:
        user = session.get(User, user_id)
        assert user.name == "alice" and user.display_name == "Alice Liddell"
        assert user.email == "alice@example.org" and user.email_verified
        assert session.get(Tenant, user.tenant_id).name == "physics-inst"
        link = session.scalar(select(ExternalIdentity).where(ExternalIdentity.user_id == user_id))
        assert (link.provider, link.subject) == ("ldap", "alice")
    assert roles_of(db, "alice") == {("tenant_admin", "physics-inst", "ldap")}
    assert audit_actions(db, "alice") == [("ldap", "user.add"), ("ldap", "user.link"), ("ldap", "role.grant")]
    # the second sign-in finds the same user through the link, and changes nothing
    assert sign_in(db, slapd.ldap_config(), "ALICE", PW["alice"]) == user_id
    assert len(audit_actions(db, "alice")) == 3


def test_directory_spelling_becomes_a_lower_case_platform_login(slapd, clean_db):
    user_id = sign_in(clean_db, slapd.ldap_config(), "dave", PW["Dave"])
    with clean_db.session() as session:
        assert session.get(User, user_id).name == "dave"


def test_leaving_a_group_takes_the_role_back_at_the_next_sign_in(slapd, clean_db):
    config = slapd.ldap_config()
    try:
        sign_in(clean_db, config, "carol", PW["carol"])
        assert roles_of(clean_db, "carol") == {("operator", None, "ldap")}
        slapd.set_group_members("ops", ["bob"])  # carol leaves ops
        assert "ops" not in authenticate(config, "carol", PW["carol"]).groups
        sign_in(clean_db, config, "carol", PW["carol"])
        assert roles_of(clean_db, "carol") == set()
        with clean_db.session() as session:
            revoke = session.scalar(select(AuditEvent).where(AuditEvent.action == "role.revoke"))
            assert (revoke.actor, revoke.target, revoke.detail["role"]) == ("ldap", "user:carol", "operator")
    finally:
        slapd.reset_groups()


def test_a_role_a_person_granted_is_not_taken_back(slapd, clean_db):
    user_id = sign_in(clean_db, slapd.ldap_config(), "bob", PW["bob"], mappings=[])
    with clean_db.session() as session:
        session.add(RoleGrant(user_id=user_id, role="finance", granted_by="root@cli", reason="by hand"))
    sign_in(clean_db, slapd.ldap_config(), "bob", PW["bob"], mappings=[])
    assert roles_of(clean_db, "bob") == {("finance", None, "root@cli")}


def test_a_suspended_user_is_refused(slapd, physics_tenant):
    clean_db = physics_tenant
    user_id = sign_in(clean_db, slapd.ldap_config(), "bob", PW["bob"])
    with clean_db.session() as session:
        users.set_status(session, None, audit.Who.cli(), session.get(User, user_id), "suspend", "left the centre")
    with pytest.raises(SignInRefused) as caught:
        sign_in(clean_db, slapd.ldap_config(), "bob", PW["bob"])
    assert caught.value.reason == "suspended" and "left the centre" in str(caught.value)


def test_no_account_is_made_when_creating_users_is_off(slapd, physics_tenant):
    clean_db = physics_tenant
    with pytest.raises(SignInRefused) as caught:
        sign_in(clean_db, slapd.ldap_config(), "bob", PW["bob"], create_users=False)
    assert caught.value.reason == "no_account"
    with clean_db.session() as session:
        assert session.scalar(select(User).where(User.name == "bob")) is None
        assert session.scalar(select(ExternalIdentity)) is None
    assert audit_actions(clean_db, "bob") == []


def test_check_mappings_names_the_configuration_line_of_an_unknown_tenant(physics_tenant):
    config_text = ('[auth.ldap]\nurl = "ldap://dir"\n\n[[auth.ldap.groups]]\ngroup = "physics"\n'
                   'tenant = "physics-inst"\n\n[[auth.ldap.groups]]\ngroup = "chem"\ntenant = "chem-inst"\n')
    mappings = MAPPINGS + [GroupMapping(group="chem", tenant="chem-inst")]
    with physics_tenant.session() as session:
        check_mappings(session, config_text, [("auth.ldap", MAPPINGS, None)])  # all known: fine
        with pytest.raises(ValueError) as caught:
            check_mappings(session, config_text, [("auth.ldap", mappings, None)])
    assert str(caught.value) == ("auth.ldap: group 'chem' names tenant 'chem-inst', which does not exist "
                                 "(configuration line 10: tenant = \"chem-inst\") "
                                 "(create it with `cnet admin tenant-add`)")


# -- through the API: POST /auth/login and /auth/token -------------------------------

def _site(make_platform, config):
    from fastapi.testclient import TestClient

    from computenet.api.app import create_app
    from computenet.config import AuthConfig

    platform = make_platform(auth=AuthConfig(ldap=config))
    with platform.db.session() as session:
        tenants.create_tenant(session, "physics-dept", "university")
    return platform, TestClient(create_app(platform))


def test_a_directory_user_signs_in_over_http_with_mapped_tenant_and_roles(make_platform, slapd):
    config = slapd.ldap_config(groups=[GroupMapping(group="physics", tenant="physics-dept", roles=["tenant_admin"])])
    platform, client = _site(make_platform, config)
    answer = client.post("/auth/login", json={"login": "alice", "password": PW["alice"]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["method"] == "ldap" and answer.json()["user"] == "alice"
    assert client.get("/admin/users").status_code == 200  # tenant admin of physics-dept, from the group
    wrong = client.post("/auth/login", json={"login": "alice", "password": "not-it"})
    assert wrong.status_code == 401 and wrong.json()["detail"] == REFUSED
    cli = client.post("/auth/token", json={"grant_type": "password", "login": "bob", "password": PW["bob"]})
    assert cli.status_code == 200 and cli.json()["user"] == "bob"


def test_local_operators_still_sign_in_while_the_directory_is_down(make_platform, tmp_path):
    from computenet.services.tenancy import accounts
    from computenet.services.signin import passwords

    private = ldap_server.Slapd(tmp_path / "slapd").start()
    platform, client = _site(make_platform, private.ldap_config())
    with platform.db.session() as session:
        ops = accounts.create_user(session, "ops")
        passwords.set_password(session, audit.SYSTEM, ops, "Local-Operator-1", platform.settings.auth)
    assert client.post("/auth/login", json={"login": "alice", "password": PW["alice"]}).status_code == 200
    private.stop()
    down = client.post("/auth/login", json={"login": "alice", "password": PW["alice"]})
    assert down.status_code == 503
    assert "cannot be reached" in down.json()["detail"] and "local password can still sign in" in down.json()["detail"]
    assert client.post("/auth/login", json={"login": "ops", "password": "Local-Operator-1"}).status_code == 200
