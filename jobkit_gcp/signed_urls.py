"""V4 signed URLs for direct uploads to the bucket, signed with a key or through IAM.

A signed URL lets a client put one object into the bucket without credentials of its own:

- a single `PUT` (the default): one request carries the whole file (Cloud Storage takes up
  to 5 TiB so; Cloud Run's 32 MiB limit does not apply, the bytes never pass through it);
- a resumable upload (`resumable=True`): a `POST` with `x-goog-resumable: start` opens a
  session, whose URI (the `Location` of the answer) takes the file in `PUT`s with
  `Content-Range`, and can be resumed after a broken connection for a week.

Either way the URL is signed with `x-goog-if-generation-match: 0` (it creates the object,
never replaces one: an upload cannot change after its job has been accepted) and
`x-goog-content-length-range: 0,{max}` (Cloud Storage refuses a larger body), and the
content type; a client must send exactly those headers.

Who signs: credentials that hold a private key (a service-account key file, as in tests)
sign locally. Cloud Run's have no key: the service account signs through the IAM
Credentials API's `signBlob`, which needs `roles/iam.serviceAccountTokenCreator` granted to
the service account on itself. Signing may do network I/O, so it runs on the store's threads.
"""

from __future__ import annotations

import base64
import json
import threading
from datetime import datetime
from typing import Any, Final

import attrs
import google.auth
import google.auth.credentials
from google.auth import exceptions
from google.auth.transport import requests as transport

from jobkit_gcp.gcs import GcsBlobStore

IAM_ENDPOINT: Final = "https://iamcredentials.googleapis.com"
SCOPES: Final = ("https://www.googleapis.com/auth/cloud-platform",)


@attrs.frozen(kw_only=True)
class SignedUpload:
    """Send `method` to `url` with exactly `headers` (and, for a single `PUT`, the file)."""

    method: str
    url: str
    headers: dict[str, str]
    resumable: bool


class SigningError(Exception):
    """The URL could not be signed (no credentials, or IAM refused): say why."""


class IamSigner(google.auth.credentials.Signing):
    """Signs bytes with IAM's `signBlob` for `email`, authorised by `credentials` (Cloud
    Run's metadata-server token); `endpoint` is IAM Credentials' base URL."""

    def __init__(
        self,
        credentials: google.auth.credentials.Credentials,
        email: str,
        *,
        endpoint: str = IAM_ENDPOINT,
    ) -> None:
        self._credentials = credentials
        self._email = email
        self._endpoint = endpoint.rstrip("/")
        self._request = transport.Request()

    def sign_bytes(self, message: bytes | str) -> bytes:
        payload = message.encode() if isinstance(message, str) else message
        url = f"{self._endpoint}/v1/projects/-/serviceAccounts/{self._email}:signBlob"
        headers = {"Content-Type": "application/json"}
        self._credentials.before_request(self._request, "POST", url, headers)  # type: ignore[no-untyped-call]
        body = json.dumps({"payload": base64.b64encode(payload).decode("ascii")}).encode()
        response = self._request(url=url, method="POST", body=body, headers=headers)
        if response.status != 200:
            detail = response.data.decode("utf-8", "replace")[:300]
            raise SigningError(
                f"IAM signBlob for {self._email} answered {response.status}: {detail}"
            )
        signed: str = json.loads(response.data)["signedBlob"]
        return base64.b64decode(signed)

    @property
    def signer_email(self) -> str:
        return self._email

    @property
    def signer(self) -> Any:
        return None


class GcsUploadSigner:
    """Signs upload URLs for objects of `blobs` (its bucket and prefix), with `credentials`
    (by default Application Default Credentials, found on first use)."""

    def __init__(
        self,
        blobs: GcsBlobStore,
        *,
        credentials: google.auth.credentials.Credentials | None = None,
        iam_endpoint: str = IAM_ENDPOINT,
    ) -> None:
        self._blobs = blobs
        self._credentials = credentials
        self._iam_endpoint = iam_endpoint
        self._lock = threading.Lock()

    async def sign(
        self,
        key: str,
        *,
        content_type: str,
        max_bytes: int,
        expires_at: datetime,
        resumable: bool,
    ) -> SignedUpload:
        return await self._blobs.run(
            self._sign, key, content_type, max_bytes, expires_at, resumable
        )

    def _signing(self) -> google.auth.credentials.Signing:
        with self._lock:
            if self._credentials is None:
                try:
                    self._credentials, _ = google.auth.default(scopes=SCOPES)
                except exceptions.DefaultCredentialsError as exc:
                    raise SigningError(f"no credentials to sign upload URLs with: {exc}") from None
            credentials = self._credentials
            if isinstance(credentials, google.auth.credentials.Signing):
                return credentials  # a key of its own: signs locally
            if not credentials.valid:
                try:
                    credentials.refresh(transport.Request())  # type: ignore[no-untyped-call]
                except exceptions.GoogleAuthError as exc:
                    raise SigningError(f"the credentials could not be refreshed: {exc}") from None
            email = getattr(credentials, "service_account_email", None)
            if not isinstance(email, str) or "@" not in email:
                raise SigningError("the credentials name no service account to sign as")
            return IamSigner(credentials, email, endpoint=self._iam_endpoint)

    def _sign(
        self,
        key: str,
        content_type: str,
        max_bytes: int,
        expires_at: datetime,
        resumable: bool,
    ) -> SignedUpload:
        headers = {
            "Content-Type": content_type,
            "x-goog-if-generation-match": "0",
            "x-goog-content-length-range": f"0,{max_bytes}",
        }
        if resumable:
            headers["x-goog-resumable"] = "start"
        method = "POST" if resumable else "PUT"
        blob = self._blobs.blob(key)
        try:
            url: str = blob.generate_signed_url(
                version="v4",
                expiration=expires_at,
                method=method,
                content_type=content_type,
                headers={name: value for name, value in headers.items() if name != "Content-Type"},
                credentials=self._signing(),
            )
        except exceptions.GoogleAuthError as exc:
            raise SigningError(f"the upload URL could not be signed: {exc}") from None
        return SignedUpload(method=method, url=url, headers=headers, resumable=resumable)
