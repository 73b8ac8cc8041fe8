import msgspec
import httpx


async def test_health_is_ok(client: httpx.AsyncClient):
    r = await client.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


async def test_ready_when_the_database_answers(client: httpx.AsyncClient):
    r = await client.get("/ready")
    assert r.status_code == 200, r.text
    assert r.json() == {"ready": True, "reasons": []}


async def test_ready_is_503_with_the_reason_when_a_check_fails(client, services):
    async def stale():
        return "no tick for 12.0 s"

    services.readiness["feed"] = stale
    r = await client.get("/ready")
    assert r.status_code == 503
    assert r.json()["reasons"] == ["feed: no tick for 12.0 s"]


async def test_status_reports_version_and_database(client):
    body = (await client.get("/status")).json()
    assert body["version"]
    assert body["database"]["healthy"] is True
    assert body["tasks"] > 0


async def test_metrics_are_prometheus_text_and_count_requests(client):
    await client.get("/health")
    r = await client.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain")
    assert 'odted_http_requests_total{method="GET",route="/health",status="200"} 1' in r.text
    assert "# TYPE odted_http_request_seconds histogram" in r.text
    assert "odted_process_resident_bytes" in r.text


async def test_openapi_yaml_lists_every_route(client, server):
    r = await client.get("/openapi.yaml")
    assert r.status_code == 200
    text = r.text
    for path in ("/health", "/ready", "/status", "/metrics", "/openapi.yaml"):
        assert f'"{path}":' in text
    assert '"openapi": "3.1.0"' in text


async def test_openapi_yaml_parses_as_the_document_it_describes(client, services):
    from odted.api.routes import openapi_document

    yaml_text = (await client.get("/openapi.yaml")).text
    api = None
    import quart  # noqa: F401

    parsed = _parse_simple_yaml(yaml_text)
    assert parsed["paths"]["/health"]["get"]["operationId"] == "get_health"
    assert parsed["components"]["schemas"]["Health"]["required"] == ["status"]


async def test_unknown_route_is_404_with_a_code(client):
    r = await client.get("/no/such/thing")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/plain")
    assert r.text == "not_found: no such route"


async def test_errors_are_json_when_asked(client):
    r = await client.get("/no/such/thing", headers={"Accept": "application/json"})
    assert r.status_code == 404
    assert r.json() == {"code": "not_found", "message": "no such route", "details": {}}


async def test_wrong_method_is_405_with_a_code(client):
    r = await client.post("/health")
    assert r.status_code == 405
    assert r.text.startswith("method_not_allowed:")


async def test_request_id_is_echoed_or_generated(client):
    r = await client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = await client.get("/health")
    assert len(r.headers["x-request-id"]) == 32
    r = await client.get("/health", headers={"X-Request-ID": "bad id with spaces"})
    assert r.headers["x-request-id"] != "bad id with spaces"


def _parse_simple_yaml(text: str):
    """Parse the block YAML our emitter writes (every scalar is JSON)."""
    lines = [l for l in text.splitlines() if l.strip()]
    pos = 0

    def indent_of(line):
        return len(line) - len(line.lstrip(" "))

    def parse_block(ind):
        nonlocal pos
        if lines[pos].lstrip().startswith("- "):
            out = []
            while pos < len(lines) and indent_of(lines[pos]) == ind and lines[pos].lstrip().startswith("- "):
                rest = lines[pos].lstrip()[2:]
                if rest.startswith('"') and rest.rstrip().endswith(":") or ('": ' in rest):
                    lines[pos] = " " * (ind + 2) + rest
                    out.append(parse_block(ind + 2))
                else:
                    out.append(msgspec.json.decode(rest))
                    pos += 1
            return out
        out = {}
        while pos < len(lines) and indent_of(lines[pos]) == ind:
            line = lines[pos].strip()
            key, _, rest = line.partition('": ')
            if rest:
                out[msgspec.json.decode(key + '"')] = msgspec.json.decode(rest)
                pos += 1
            else:
                k = msgspec.json.decode(line[:-1])
                pos += 1
                out[k] = parse_block(indent_of(lines[pos]))
        return out

    return parse_block(0)
