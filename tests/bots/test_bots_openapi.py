"""Every strategies and bots route is in the OpenAPI document, with its method and status."""

import dataclasses

from odted.api.app import create_app
from odted.api.routes import openapi_document
from odted.metrics import Registry

ROUTES = {
    ("post", "/strategies", "201"), ("get", "/strategies", "200"), ("get", "/strategies/{strategy_id}", "200"),
    ("patch", "/strategies/{strategy_id}", "200"), ("delete", "/strategies/{strategy_id}", "204"),
    ("post", "/bots", "201"), ("get", "/bots", "200"), ("get", "/bots/{bot_id}", "200"),
    ("patch", "/bots/{bot_id}", "200"), ("delete", "/bots/{bot_id}", "204"), ("get", "/bots/{bot_id}/summary", "200"),
    ("post", "/bots/{bot_id}/sessions", "201"), ("get", "/bots/{bot_id}/sessions", "200"),
    ("get", "/bots/{bot_id}/sessions/{session_id}", "200"), ("delete", "/bots/{bot_id}/sessions/{session_id}", "202"),
    ("post", "/bots/{bot_id}/sessions/{session_id}/cancel-all-orders", "202"),
    ("get", "/bots/{bot_id}/sessions/{session_id}/orders", "200"),
    ("get", "/bots/{bot_id}/sessions/{session_id}/orders/{order_id}", "200"),
    ("get", "/bots/{bot_id}/sessions/{session_id}/positions", "200"),
    ("get", "/bots/{bot_id}/sessions/{session_id}/transactions", "200"),
    ("get", "/bots/{bot_id}/sessions/{session_id}/financials", "200"),
    ("get", "/bots/{bot_id}/sessions/{session_id}/history", "200"),
    ("get", "/bots/{bot_id}/sessions/{session_id}/decision-log", "200"),
}


async def test_the_openapi_document_lists_every_strategies_and_bots_route(bots_env):
    app = create_app(dataclasses.replace(bots_env.services, metrics=Registry()))
    doc = openapi_document(app.extensions["odted.api"].routes, version="test")
    found = {(method, path, next(iter(op["responses"])))
             for path, ops in doc["paths"].items() if path.startswith(("/strategies", "/bots"))
             for method, op in ops.items()}
    assert found == ROUTES
    public = doc["paths"]["/strategies/{strategy_id}"]["get"]
    assert public["security"] == [{"token": []}, {}], "a token is optional"
    assert "post" not in doc["paths"]["/bots/{bot_id}/sessions/{session_id}/orders"], "bots trade, not people"
