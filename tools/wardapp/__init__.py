"""The ward web app (issue 22): overview, patient trends, alerts, devices,
users and the audit log over HTTPS, with roles enforced on the server.
docs/ward.md has the whole picture; app.py the routes."""
