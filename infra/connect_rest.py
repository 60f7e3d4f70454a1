"""A dynamic provider that manages one connector through the Kafka Connect REST API.

``PUT /connectors/{name}/config`` creates the connector or replaces its
configuration, so create and update are the same call and work against any
Connect cluster (self-managed, Strimzi, Aiven, Confluent Platform).
``DELETE /connectors/{name}`` removes it; the connector's committed offsets
stay in Connect's offsets topic, so a connector recreated under the same
name resumes where it stopped.

Note:
    Pulumi pickles a dynamic provider into the state and unpickles it in a
    separate process that cannot import this repository. The provider
    class is therefore built inside :func:`_connect_rest_provider`, which
    makes it pickle by value, and it uses only the standard library,
    imported inside its methods.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi.dynamic

# Inputs (and outputs) of the dynamic resource.
CONNECT_URL = "connectUrl"
CONNECTOR_NAME = "connectorName"
CONFIG = "config"
USERNAME = "username"
PASSWORD = "password"


def _connect_rest_provider() -> pulumi.dynamic.ResourceProvider:
    class KafkaConnectRestProvider(pulumi.dynamic.ResourceProvider):
        def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
            self._put_config(props)
            return pulumi.dynamic.CreateResult(id_=props["connectorName"], outs=props)

        def update(
            self, _id: str, _olds: dict[str, Any], props: dict[str, Any]
        ) -> pulumi.dynamic.UpdateResult:
            self._put_config(props)
            return pulumi.dynamic.UpdateResult(outs=props)

        def diff(
            self, _id: str, olds: dict[str, Any], news: dict[str, Any]
        ) -> pulumi.dynamic.DiffResult:
            # A new name or cluster is a different connector.
            replaces = [
                key
                for key in ("connectUrl", "connectorName")
                if olds.get(key) != news.get(key)
            ]
            changed = replaces or [
                key
                for key in ("config", "username", "password")
                if olds.get(key) != news.get(key)
            ]
            return pulumi.dynamic.DiffResult(
                changes=bool(changed),
                replaces=replaces,
                delete_before_replace=True,
            )

        def delete(self, _id: str, props: dict[str, Any]) -> None:
            self._request(props, "DELETE", "", None, missing_ok=True)

        def read(self, id_: str, props: dict[str, Any]) -> pulumi.dynamic.ReadResult:
            config = self._request(props, "GET", "/config", None, missing_ok=True)
            if config is None:
                return pulumi.dynamic.ReadResult(id_="", outs={})
            return pulumi.dynamic.ReadResult(id_=id_, outs={**props, "config": config})

        def _put_config(self, props: dict[str, Any]) -> None:
            self._request(props, "PUT", "/config", props["config"], missing_ok=False)

        def _request(
            self,
            props: dict[str, Any],
            method: str,
            suffix: str,
            body: Any,
            missing_ok: bool,
        ) -> Any:
            import base64
            import json
            import urllib.error
            import urllib.parse
            import urllib.request

            name = urllib.parse.quote(props["connectorName"], safe="")
            url = f"{props['connectUrl'].rstrip('/')}/connectors/{name}{suffix}"
            headers = {"Accept": "application/json"}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            if props.get("username"):
                token = f"{props['username']}:{props.get('password') or ''}"
                headers["Authorization"] = "Basic " + base64.b64encode(
                    token.encode()
                ).decode("ascii")

            request = urllib.request.Request(url, data, headers, method=method)
            try:
                # Connect answers in well under a second unless it is stuck.
                with urllib.request.urlopen(request, timeout=30) as response:
                    payload = response.read()
            except urllib.error.HTTPError as error:
                if missing_ok and error.code == 404:
                    return None
                # Connect explains rejections (invalid config, rebalance in
                # progress) in the body; the URL carries no secret.
                detail = error.read().decode("utf-8", "replace")[:2000]
                raise RuntimeError(
                    f"{method} {url} failed with HTTP {error.code}: {detail}"
                ) from None
            return json.loads(payload) if payload else None

    return KafkaConnectRestProvider()


class KafkaConnectConnector(pulumi.dynamic.Resource):
    """A connector on a Kafka Connect cluster, managed through its REST API."""

    config: pulumi.Output[dict[str, str]]

    def __init__(
        self,
        name: str,
        *,
        connect_url: pulumi.Input[str],
        connector_name: pulumi.Input[str],
        config: pulumi.Input[dict[str, str]],
        username: pulumi.Input[str] | None = None,
        password: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {
            CONNECT_URL: connect_url,
            CONNECTOR_NAME: connector_name,
            CONFIG: config,
            USERNAME: username,
            PASSWORD: password,
        }
        # The configuration may hold S3 credentials: keep it out of logs
        # and plain-text state.
        secrets = pulumi.ResourceOptions(additional_secret_outputs=[CONFIG, PASSWORD])
        super().__init__(
            _connect_rest_provider(),
            name,
            props,
            pulumi.ResourceOptions.merge(opts, secrets),
        )
