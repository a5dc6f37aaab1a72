"""The gateway's ``/docs`` in a real headless Chromium that can reach only loopback.

Intake and routing run under uvicorn in threads (their broker points at a closed port:
``/openapi.json`` needs neither broker nor data), the gateway in front of them. Swagger UI
must render their operations from the merged OpenAPI 3.1 document: had the page loaded
its script from a CDN, it would stay blank and no operation would appear.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI

from motcua.gateway import create_gateway
from services.intake.api import create_app as intake_app
from services.routing.api import create_app as routing_app
from shared.settings import Settings

By = pytest.importorskip("selenium.webdriver.common.by").By
WebDriverWait = pytest.importorskip("selenium.webdriver.support.ui").WebDriverWait


@pytest.fixture(scope="module")
def gateway_url(
    tmp_path_factory: pytest.TempPathFactory,
    closed_port: int,
    served: Callable[[FastAPI], str],
) -> str:
    settings = Settings(
        var_dir=tmp_path_factory.mktemp("docs"),
        kafka_bootstrap_servers=f"127.0.0.1:{closed_port}",
        kafka_create_topics=False,
    )
    upstreams = {
        "intake": served(intake_app(settings)),
        "routing": served(routing_app(settings)),
    }
    return served(create_gateway(upstreams))


def test_docs_lists_the_operations_with_no_request_off_the_machine(
    gateway_url: str, browser: Any
) -> None:
    browser.get(f"{gateway_url}/docs")
    WebDriverWait(browser, 30).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, ".swagger-ui .opblock"),
        "Swagger UI shows no operation: the page is blank (did its script load?)",
    )
    assert browser.title == "motcua API"
    paths = {
        element.get_attribute("data-path")
        for element in browser.find_elements(By.CSS_SELECTOR, ".opblock .opblock-summary-path")
    }
    assert {"/api/v1/dossiers", "/api/v1/dossiers/{code}", "/api/v1/catalogue"} <= paths

    loaded = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert f"{gateway_url}/docs/static/swagger-ui-bundle.js" in loaded
    assert f"{gateway_url}/openapi.json" in loaded
    assert [url for url in loaded if not url.startswith(gateway_url + "/")] == []
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
