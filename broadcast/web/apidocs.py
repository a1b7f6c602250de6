"""``/docs`` (Swagger UI) and ``/redoc``, served from the installed ``fastapi-offline`` package
instead of a CDN, so they work offline and without inline script (they run under a CSP)."""

from __future__ import annotations

from html import escape
from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs/assets"  # swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js, favicon.png
SWAGGER = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - Swagger UI</title>
<link rel="icon" href="{assets}/favicon.png"><link rel="stylesheet" href="{assets}/swagger-ui.css">
</head><body><div id="swagger-ui" data-openapi-url="{openapi}"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{static}/apidocs/swagger.js"></script>
</body></html>"""
REDOC = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - ReDoc</title>
<link rel="icon" href="{assets}/favicon.png"></head>
<body><redoc spec-url="{openapi}"></redoc><script src="{assets}/redoc.standalone.js"></script>
</body></html>"""


def install(app: FastAPI) -> None:
    """Call with ``docs_url=None, redoc_url=None`` given to FastAPI."""
    app.mount(ASSETS, StaticFiles(directory=str(files("fastapi_offline") / "static")), "apidocs")

    def page(template: str, request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return HTMLResponse(
            template.format(
                title=escape(app.title),
                assets=root + ASSETS,
                static=root + "/static",
                openapi=root + (app.openapi_url or ""),
            )
        )

    @app.get("/docs", include_in_schema=False)
    def swagger(request: Request) -> HTMLResponse:
        return page(SWAGGER, request)

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        return page(REDOC, request)
