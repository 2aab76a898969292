"""The gateway's own admin site at /django-admin/: its name, "View site" to the API docs,
and a dashboard as the index (gatewaysite.dashboard gathers its figures).

It replaces Django's default site (gatewaysite.apps.GatewayAdminConfig), so every
`@admin.register` and `admin.site` in the apps land here, with Django's auth,
permissions, history and forms unchanged.
"""

from __future__ import annotations

from django.contrib import admin

from gatewaysite.login import ThrottledAdminLoginForm


class GatewayAdminSite(admin.AdminSite):
    site_header = "LLM gateway"
    site_title = "LLM gateway"
    index_title = "Dashboard"
    # The gateway has no public pages; its API documentation is what an operator wants.
    site_url = "/docs"
    index_template = "admin/gateway/dashboard.html"
    login_form = ThrottledAdminLoginForm
    # The collapsible left menu takes ~280 px: the request log could not fit 1366 px with
    # it. The dashboard and the breadcrumbs lead everywhere it did.
    enable_nav_sidebar = False

    def index(self, request, extra_context=None):
        from gatewaysite.dashboard import dashboard_context

        context = {**dashboard_context(request), **(extra_context or {})}
        return super().index(request, context)
