"""The web pages (admin pages and the user's security page). Needs the `web` extra (Flask, Authlib).

Import `twostep.web.app.create_app`; this package itself imports nothing heavy, because
`twostep setup` plans the sign-in client with `twostep.web_oidc_client`, without the web extra.
"""
