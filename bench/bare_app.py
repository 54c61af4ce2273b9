"""The HTTP ceiling: a bare Starlette app on the gateway's server stack (uvicorn, httptools,
uvloop) that reads the body and answers 200 with OC's success envelope, doing nothing else.

    uvicorn bench.bare_app:app --http httptools --loop uvloop --no-access-log
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_OK = b'{"code":0,"success":true,"message":"success","errors":[]}'


async def callback(request: Request) -> Response:
    await request.body()
    return Response(_OK, media_type="application/json")


async def livez(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


app = Starlette(
    routes=[
        Route("/webhooks/oc/{kind}", callback, methods=["POST"]),
        Route("/webhooks/oc/{token}/{kind}", callback, methods=["POST"]),
        Route("/livez", livez),
    ]
)
