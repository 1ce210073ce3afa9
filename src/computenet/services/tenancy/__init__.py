"""Who is who and who may do what: tenants, accounts, users, roles and grants, API tokens, Unix identities on clusters."""
