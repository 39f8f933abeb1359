"""WeChat-specific errors, each a subclass of the shared tree in `ticket_core.errors`.

Callers outside the WeChat adapter only need the shared base classes; these subclasses add the
distinctions the adapter and the outbox act on (switch to a template message, refresh the token).
"""

from __future__ import annotations

from ticket_core.errors import ChannelError, InvalidInput, PermanentDeliveryError

# -- callback input (answered 4xx / 403, never stored) ---------------------------------------------


class SignatureInvalid(InvalidInput):
    """`signature` or `msg_signature` does not match: the request did not come from WeChat."""

    code = "wechat_bad_signature"


class ReplayRejected(InvalidInput):
    """A correctly signed request that must not be processed again (old timestamp, reused nonce)."""

    code = "wechat_replay"


class StaleTimestamp(ReplayRejected):
    code = "wechat_stale_timestamp"


class NonceReused(ReplayRejected):
    code = "wechat_nonce_reused"


class DecryptError(InvalidInput):
    """The `Encrypt` payload cannot be opened with this account's EncodingAESKey."""

    code = "wechat_decrypt_failed"


class BadBase64(DecryptError):
    code = "wechat_bad_base64"


class BadPadding(DecryptError):
    code = "wechat_bad_padding"


class AppIdMismatch(DecryptError):
    """Decrypted fine but was addressed to another app id: a key shared between accounts, or forged."""

    code = "wechat_wrong_app_id"


class XmlRejected(InvalidInput):
    """The callback body is not acceptable XML (too big, DTD/entities, too deep, malformed, fields)."""

    code = "wechat_bad_xml"


# -- outbound API ----------------------------------------------------------------------------------


class CustomerServiceWindowClosed(PermanentDeliveryError):
    """45015 (more than 48 h since the user's last message) or 45047 (5 messages used in the window).

    Retrying a customer-service message cannot succeed; the outbox sends a template message instead.
    """

    code = "wechat_window_closed"


class UserNotFollowing(PermanentDeliveryError):
    code = "wechat_user_not_following"


class TemplateRejected(PermanentDeliveryError):
    code = "wechat_bad_template"


class CredentialsRejected(PermanentDeliveryError):
    """Wrong app id or secret, or the server's IP is not whitelisted: fix the configuration."""

    code = "wechat_bad_credentials"


class AccessTokenRejected(ChannelError):
    """40001 / 40014 / 42001: the client refreshes the token once and retries before surfacing this."""

    code = "wechat_token_rejected"
