"""SMS over an HTTP gateway, in the shape of the common Vietnamese brand-name SMS APIs.

Request: ``POST <sms_url>`` with the API key in a header and a JSON body
``{phone, message, brandname, request_id}`` (every field name is a setting).
Answer: JSON whose ``code`` (a setting) is a success code (accepted; its ``message_id``
is kept), a temporary code (retry later) or anything else (permanent error).
HTTP 429 and 5xx and transport errors are temporary; other HTTP errors permanent.

The message key travels as the request's reference id; gateways of this kind ignore a
repeated reference, which is what makes a repeat after a crash safe
(``sms_gateway_deduplicates``).
"""

from __future__ import annotations

from typing import Any

import httpx

from services.notify.channels.base import DeliveryError, Outgoing
from services.notify.settings import NotifySettings

_TOO_MANY_REQUESTS = 429
_SERVER_ERROR = 500


class HttpSmsSink:
    """One gateway request per message, over a shared connection pool."""

    name = "http"
    reaches_citizen = True

    def __init__(self, settings: NotifySettings, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self.resend_safe = settings.sms_gateway_deduplicates
        self._client = client or httpx.AsyncClient(timeout=settings.sms_timeout_seconds)

    def request_body(self, message: Outgoing) -> dict[str, str]:
        """The JSON body sent for a message."""
        s = self.settings
        return {
            s.sms_field_phone: message.recipient,
            s.sms_field_message: message.body,
            s.sms_field_brandname: s.sms_brandname,
            s.sms_field_reference: message.key,
        }

    async def send(self, message: Outgoing) -> str | None:
        """Post the message; return the gateway's id on acceptance."""
        s = self.settings
        headers = {s.sms_api_key_header: s.sms_api_key.get_secret_value()}
        try:
            response = await self._client.post(
                s.sms_url, json=self.request_body(message), headers=headers
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"gateway {type(exc).__name__}", temporary=True) from exc
        status = response.status_code
        if status == _TOO_MANY_REQUESTS or status >= _SERVER_ERROR:
            raise DeliveryError(f"gateway http {status}", temporary=True)
        if status >= httpx.codes.BAD_REQUEST:
            raise DeliveryError(f"gateway http {status}", temporary=False)
        try:
            answer: Any = response.json()
        except ValueError as exc:
            raise DeliveryError("gateway answer is not JSON", temporary=True) from exc
        if not isinstance(answer, dict):
            raise DeliveryError("gateway answer is not an object", temporary=True)
        code = str(answer.get(s.sms_answer_code_field, ""))
        if code in s.success_codes:
            provider_id = answer.get(s.sms_answer_id_field)
            return None if provider_id is None else str(provider_id)
        raise DeliveryError(f"gateway code {code}", temporary=code in s.temporary_codes)
