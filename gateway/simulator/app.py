"""The OC simulator as a Starlette app: OAuth under /oauth, business API under /openapi,
and the simulator's control API under /_sim, all on one port.

`create_app(config)` builds a fresh `Simulator` (world, OAuth, faults, counters) and
keeps it at `app.state.simulator` for in-process use. Business endpoints:

| name               | method + path (below /openapi)   | envelope  |
|--------------------|----------------------------------|-----------|
| outbound_query_v2  | POST /3pp/outbound/v2/query      | classic   |
| stock_snapshot_v2  | POST /3pp/inventory/v2/snapshot  | classic   |
| stock_movement     | POST /3pp/inventory/v1/movement  | classic   |
| service_list       | GET  /3pp/base/v1/service        | classic (no token) |
| return_orders      | GET  /3pp/returns/v1/query/orders | Return 2.0 |
| return_stock       | POST /3pp/returns/v1/query/stock  | Return 2.0 |
| return_label       | GET  /3pp/returns/v1/query/label  | Return 2.0 |
| return_cancel_rma  | POST /3pp/returns/v1/cancel/rma   | Return 2.0 |
"""

from __future__ import annotations

from typing import Final

from starlette.applications import Starlette

from gateway.simulator import api, returns_api
from gateway.simulator.business import Endpoint, business_route
from gateway.simulator.control_routes import control_routes
from gateway.simulator.data import Clock, utc_now
from gateway.simulator.oauth_routes import oauth_routes
from gateway.simulator.state import Simulator, SimulatorConfig
from schemas.oc_api import (
    OUTBOUND_QUERY_PATH,
    RETURN_CANCEL_RMA_PATH,
    RETURN_LABEL_PATH,
    RETURN_ORDERS_PATH,
    RETURN_STOCK_PATH,
    SERVICE_LIST_PATH,
    STOCK_MOVEMENT_PATH,
    STOCK_SNAPSHOT_PATH,
)

ENDPOINTS: Final = (
    Endpoint("outbound_query_v2", "POST", OUTBOUND_QUERY_PATH, api.outbound_query),
    Endpoint("stock_snapshot_v2", "POST", STOCK_SNAPSHOT_PATH, api.stock_snapshot),
    Endpoint("stock_movement", "POST", STOCK_MOVEMENT_PATH, api.stock_movement),
    Endpoint("service_list", "GET", SERVICE_LIST_PATH, api.service_list, needs_token=False),
    Endpoint("return_orders", "GET", RETURN_ORDERS_PATH, returns_api.return_orders, "return2"),
    Endpoint("return_stock", "POST", RETURN_STOCK_PATH, returns_api.return_stock, "return2"),
    Endpoint("return_label", "GET", RETURN_LABEL_PATH, returns_api.return_label, "return2"),
    Endpoint(
        "return_cancel_rma", "POST", RETURN_CANCEL_RMA_PATH, returns_api.cancel_rma, "return2"
    ),
)


def create_app(config: SimulatorConfig | None = None, *, clock: Clock = utc_now) -> Starlette:
    """A new simulator app with its own world; `clock` drives the world's times."""
    app = Starlette(
        routes=[
            *oauth_routes(),
            *(business_route(endpoint) for endpoint in ENDPOINTS),
            *control_routes(),
        ]
    )
    app.state.simulator = Simulator(config, clock=clock)
    return app


def simulator_of(app: Starlette) -> Simulator:
    """The `Simulator` behind an app made by `create_app` (for in-process use)."""
    simulator: Simulator = app.state.simulator
    return simulator
