"""A small S3 client: create a bucket, list and read objects, with SigV4 signing.

The local stack needs a bucket created before the sink writes to it, and the
tests and the demo read archived objects back exactly as stored. Those few
calls do not justify an SDK dependency; everything else about S3 is left to
DuckDB and to the connector.
"""

from __future__ import annotations

import hashlib
import hmac
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from consumer_patch.errors import AgentDLQError

__all__ = ["S3Error", "S3Location", "S3Object", "SimpleS3Client"]

ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL_S3"
ACCESS_KEY_VARIABLE = "AWS_ACCESS_KEY_ID"
SECRET_KEY_VARIABLE = "AWS_SECRET_ACCESS_KEY"
REGION_VARIABLE = "AWS_REGION"
BUCKET_VARIABLE = "ARCHIVE_BUCKET"
DEFAULT_REGION = "us-east-1"

REQUEST_TIMEOUT_SECONDS = 10.0
_S3_NAMESPACE = "{http://s3.amazonaws.com/doc/2006-03-01/}"
_UNRESERVED = "-_.~"


class S3Error(AgentDLQError):
    """An S3 request failed; ``status`` is the HTTP status, 0 when unreachable."""

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class S3Location:
    """Where the archive lives and how to sign requests to it.

    Args:
        endpoint_url: An S3-compatible endpoint such as ``http://127.0.0.1:9000``.
        region: Region used in request signatures.
        access_key_id: Access key; with ``secret_access_key``.
        secret_access_key: Secret key.
        bucket: The archive bucket.
    """

    endpoint_url: str
    region: str
    access_key_id: str
    secret_access_key: str
    bucket: str

    @classmethod
    def from_environment(cls, environment: Mapping[str, str]) -> S3Location:
        """Read the ``AWS_*`` and ``ARCHIVE_BUCKET`` names of ``.stack/env``.

        Raises:
            S3Error: When a required name is missing; the message names it.
        """
        missing = [
            name
            for name in (
                ENDPOINT_VARIABLE,
                ACCESS_KEY_VARIABLE,
                SECRET_KEY_VARIABLE,
                BUCKET_VARIABLE,
            )
            if not environment.get(name)
        ]
        if missing:
            raise S3Error(f"archive settings missing: {', '.join(missing)}")
        return cls(
            endpoint_url=environment[ENDPOINT_VARIABLE].rstrip("/"),
            region=environment.get(REGION_VARIABLE) or DEFAULT_REGION,
            access_key_id=environment[ACCESS_KEY_VARIABLE],
            secret_access_key=environment[SECRET_KEY_VARIABLE],
            bucket=environment[BUCKET_VARIABLE],
        )


@dataclass(frozen=True)
class S3Object:
    key: str
    size: int


class SimpleS3Client:
    """Path-style requests to one S3 endpoint, signed with AWS Signature V4."""

    def __init__(self, location: S3Location):
        self._location = location
        self._host = urllib.parse.urlsplit(location.endpoint_url).netloc

    def ping(self) -> bool:
        """Whether the endpoint answers a signed request (list buckets)."""
        try:
            self._request("GET", "/")
        except S3Error:
            return False
        return True

    def create_bucket(self, bucket: str | None = None) -> bool:
        """Create the bucket; return False when this account already owns it."""
        name = bucket or self._location.bucket
        try:
            self._request("PUT", f"/{name}")
        except S3Error as error:
            if error.status == 409 and "BucketAlreadyOwnedByYou" in str(error):
                return False
            raise
        return True

    def list_objects(
        self, prefix: str = "", bucket: str | None = None
    ) -> list[S3Object]:
        """Every object under ``prefix``, in key order (all pages)."""
        name = bucket or self._location.bucket
        objects: list[S3Object] = []
        token: str | None = None
        while True:
            query = {"list-type": "2", "prefix": prefix}
            if token:
                query["continuation-token"] = token
            body = self._request("GET", f"/{name}", query)
            root = ElementTree.fromstring(body)
            for item in root.iter(f"{_S3_NAMESPACE}Contents"):
                key = item.findtext(f"{_S3_NAMESPACE}Key") or ""
                size = int(item.findtext(f"{_S3_NAMESPACE}Size") or 0)
                objects.append(S3Object(key, size))
            truncated = root.findtext(f"{_S3_NAMESPACE}IsTruncated") == "true"
            token = root.findtext(f"{_S3_NAMESPACE}NextContinuationToken")
            if not truncated or not token:
                return objects

    def get_object(self, key: str, bucket: str | None = None) -> bytes:
        name = bucket or self._location.bucket
        return self._request("GET", f"/{name}/{key}")

    def _request(
        self, method: str, path: str, query: Mapping[str, str] | None = None
    ) -> bytes:
        canonical_path = urllib.parse.quote(path, safe="/" + _UNRESERVED)
        canonical_query = "&".join(
            f"{_quote(name)}={_quote(value)}"
            for name, value in sorted((query or {}).items())
        )
        headers = self._signed_headers(method, canonical_path, canonical_query)
        url = f"{self._location.endpoint_url}{canonical_path}"
        if canonical_query:
            url += f"?{canonical_query}"

        request = urllib.request.Request(url, method=method, headers=headers)
        try:
            with urllib.request.urlopen(
                request, timeout=REQUEST_TIMEOUT_SECONDS
            ) as response:
                body: bytes = response.read()
                return body
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")
            raise S3Error(
                f"S3 {method} {path} failed with {error.code}: {_error_code(detail)}",
                error.code,
            ) from None
        except OSError as error:
            raise S3Error(f"S3 endpoint unreachable: {error}") from None

    def _signed_headers(
        self, method: str, canonical_path: str, canonical_query: str
    ) -> dict[str, str]:
        now = datetime.now(UTC)
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        day = amz_date[:8]
        # Every request here has an empty body.
        payload_hash = hashlib.sha256(b"").hexdigest()
        headers = {
            "host": self._host,
            "x-amz-content-sha256": payload_hash,
            "x-amz-date": amz_date,
        }
        signed = ";".join(sorted(headers))
        canonical_headers = "".join(
            f"{name}:{headers[name]}\n" for name in sorted(headers)
        )
        canonical_request = "\n".join(
            (
                method,
                canonical_path,
                canonical_query,
                canonical_headers,
                signed,
                payload_hash,
            )
        )
        scope = f"{day}/{self._location.region}/s3/aws4_request"
        string_to_sign = "\n".join(
            (
                "AWS4-HMAC-SHA256",
                amz_date,
                scope,
                hashlib.sha256(canonical_request.encode()).hexdigest(),
            )
        )
        key = _signing_key(self._location.secret_access_key, day, self._location.region)
        signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self._location.access_key_id}/{scope}, "
            f"SignedHeaders={signed}, Signature={signature}"
        )
        del headers["host"]  # urllib sends it from the URL
        return headers


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe=_UNRESERVED)


def _signing_key(secret: str, day: str, region: str) -> bytes:
    key = f"AWS4{secret}".encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _error_code(body: str) -> str:
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return body[:200] or "no detail"
    code = root.findtext("Code") or "error"
    message = root.findtext("Message") or ""
    return f"{code} {message}".strip()
