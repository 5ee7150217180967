"""The async Klaviyo client (core: no textual). See client.KlaviyoClient."""

from klaviyo_tui.klaviyo.client import DEFAULT_REVISION, DEFAULT_TIMEOUT, KlaviyoClient
from klaviyo_tui.klaviyo.exceptions import (
    EXPORT_SCOPES,
    ApiErrorDetail,
    AuthError,
    InvalidBaseURL,
    InvalidConfiguration,
    KlaviyoError,
    NotFoundError,
    RequestRejected,
    ScopeError,
    UnavailableError,
    UnexpectedResponse,
)
from klaviyo_tui.klaviyo.models import ImportErrorItem, ImportJob, KeyCheck, KlaviyoList
from klaviyo_tui.klaviyo.pacing import OPERATIONS, Operation, Pacer
from klaviyo_tui.klaviyo.transport import check_base_url
from klaviyo_tui.redaction import mask_key

__all__ = [
    "DEFAULT_REVISION",
    "DEFAULT_TIMEOUT",
    "EXPORT_SCOPES",
    "OPERATIONS",
    "ApiErrorDetail",
    "AuthError",
    "ImportErrorItem",
    "ImportJob",
    "InvalidBaseURL",
    "InvalidConfiguration",
    "KeyCheck",
    "KlaviyoClient",
    "KlaviyoError",
    "KlaviyoList",
    "NotFoundError",
    "Operation",
    "Pacer",
    "RequestRejected",
    "ScopeError",
    "UnavailableError",
    "UnexpectedResponse",
    "check_base_url",
    "mask_key",
]
