"""Signing people in: local passwords, the centre's LDAP directory, OIDC providers; what a sign-in
gives (a browser session, or for `cnet login` a short-lived token and a refresh token); lockout.

identity.py is where the methods meet: a directory or provider vouches for an ExternalUser, and
``provision`` finds (or just-in-time creates) the platform user, with tenant and roles mapped from
their groups by configuration.
"""
