"""The planner's console: server-rendered pages (Jinja2) and their JSON routes, served by
`uplift serve` at ``/``. Every asset ships in this package (no CDN); every action on a page is
a call of the service's API, so it can be scripted with a token."""

from __future__ import annotations

from fastapi import FastAPI


def mount(app: FastAPI) -> None:
    """Add the console's JSON routes and pages to the service's app; seed the first campaign
    and tier versions from what the service was started with (the churn model's thresholds);
    the latest saved tier version is what the service scores with."""
    from uplift.console import api, pages
    from uplift.console import store as cs

    service = app.state.service
    cs.seed_campaign(app.state.store, service.spec)
    cs.seed_tiers(app.state.store, dict(service.models.churn.tiers_))
    service.set_tiers(cs.tier_versions(app.state.store)[0]["thresholds"])   # the latest saved
    app.state.console_curves = {}
    # the routes themselves, not an included router: the app's route list (which the
    # permission-matrix test reads) then names every route
    for router in (api.router, pages.router):
        for route in router.routes:
            app.router.routes.append(route)
