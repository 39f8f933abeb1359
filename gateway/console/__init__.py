"""The web console for agents and admins (`/admin/`): server-rendered pages over the REST API."""
