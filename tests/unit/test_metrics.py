"""The metrics endpoint serves Prometheus text, and /health turns 503 when unhealthy."""

from __future__ import annotations

import asyncio

from consumer_patch.metrics import ConsumerMetrics, Health, serve


async def _get(port: int, path: str) -> tuple[str, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    response = (await reader.read()).decode()
    writer.close()
    head, _, body = response.partition("\r\n\r\n")
    return head.splitlines()[0], body


async def test_metrics_and_health_endpoints() -> None:
    metrics = ConsumerMetrics()
    health = Health(metrics)
    metrics.dead_letters.labels("agent-actions", "ValidationError", "permanent").inc()
    server = await serve(metrics, health, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        status, body = await _get(port, "/metrics")
        healthy_status, _ = await _get(port, "/health")
        health.report("dead_letter_publish", "topic missing")
        unhealthy_status, unhealthy_body = await _get(port, "/health")
        health.clear("dead_letter_publish")
        recovered_status, _ = await _get(port, "/health")
        missing_status, _ = await _get(port, "/nope")
    finally:
        server.close()
        await server.wait_closed()

    assert status == "HTTP/1.1 200 OK"
    assert (
        'agent_dlq_dead_letters_total{error_category="permanent",'
        'error_type="ValidationError",topic="agent-actions"} 1.0'
    ) in body
    assert healthy_status == "HTTP/1.1 200 OK"
    assert unhealthy_status == "HTTP/1.1 503 Service Unavailable"
    assert "topic missing" in unhealthy_body
    assert recovered_status == "HTTP/1.1 200 OK"
    assert missing_status == "HTTP/1.1 404 Not Found"
    assert metrics.healthy.collect()[0].samples[0].value == 1
