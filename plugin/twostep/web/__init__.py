"""The web pages (admin pages and the user's security page). Needs the `web` extra (Flask, Authlib).

Import `twostep.web.app.create_app`; this package itself imports nothing heavy, because
`twostep setup` uses `twostep.web.client_setup` without the web extra installed.
"""
