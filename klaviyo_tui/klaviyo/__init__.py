"""The async Klaviyo client (core: no textual). See client.KlaviyoClient."""

from klaviyo_tui.klaviyo.client import DEFAULT_REVISION, DEFAULT_TIMEOUT, KlaviyoClient
from klaviyo_tui.klaviyo.exceptions import (
    EXPORT_SCOPES,
    AmbiguousListName,
    ApiErrorDetail,
    AuthError,
    InvalidBaseURL,
    InvalidConfiguration,
    InvalidSubscription,
    KlaviyoError,
    NotFoundError,
    RateLimitedUntil,
    RequestRejected,
    ScopeError,
    UnavailableError,
    UnexpectedResponse,
    UnsearchableValue,
)
from klaviyo_tui.klaviyo.models import (
    ImportErrorItem,
    ImportJob,
    JobState,
    KeyCheck,
    KlaviyoList,
    ListMember,
    SubscriptionProfile,
)
from klaviyo_tui.klaviyo.pacing import OPERATIONS, Operation, Pacer
from klaviyo_tui.klaviyo.transport import DEFAULT_RATE_LIMIT_BUDGET_S, check_base_url
from klaviyo_tui.redaction import mask_key

__all__ = [
    "DEFAULT_RATE_LIMIT_BUDGET_S",
    "DEFAULT_REVISION",
    "DEFAULT_TIMEOUT",
    "EXPORT_SCOPES",
    "OPERATIONS",
    "AmbiguousListName",
    "ApiErrorDetail",
    "AuthError",
    "ImportErrorItem",
    "ImportJob",
    "InvalidBaseURL",
    "InvalidConfiguration",
    "InvalidSubscription",
    "JobState",
    "KeyCheck",
    "KlaviyoClient",
    "KlaviyoError",
    "KlaviyoList",
    "ListMember",
    "NotFoundError",
    "Operation",
    "Pacer",
    "RateLimitedUntil",
    "RequestRejected",
    "ScopeError",
    "SubscriptionProfile",
    "UnavailableError",
    "UnexpectedResponse",
    "UnsearchableValue",
    "check_base_url",
    "mask_key",
]
