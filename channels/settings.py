"""Per-account settings of each channel, as configured under `[[wechat.accounts]]` and friends."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ticket_core.secret import Secret


@dataclass(frozen=True)
class WeChatAccount:
    name: str
    app_id: str = ""
    app_secret: Secret = field(default_factory=lambda: Secret(""))
    token: Secret = field(default_factory=lambda: Secret(""))
    encoding_aes_key: Secret = field(default_factory=lambda: Secret(""))
    mode: str = "safe"
    api_base_url: str = "https://api.weixin.qq.com"
    # Ticket event (ticket_created, status_changed, public_reply, solved) -> template id, used outside
    # the customer-service window.
    templates: Mapping[str, str] = field(default_factory=dict)
    # Menu CLICK key -> action: start_report, check_status, human, top_articles:<category>.
    menu: Mapping[str, str] = field(default_factory=dict)
    reply_budget_seconds: float = 3.0  # how long a callback waits for a passive reply (deadline 5 s)
    locale: str = "zh-CN"
    max_body_bytes: int = 64 * 1024


@dataclass(frozen=True)
class TelegramBot:
    name: str
    token: Secret = field(default_factory=lambda: Secret(""))
    secret_token: Secret = field(default_factory=lambda: Secret(""))
    mode: str = "webhook"
    base_url: str = "https://api.telegram.org/bot"
    staff_chat_id: int = 0  # the agents' supergroup; 0: no agent relay
    # Forum topics, one per ticket; without them agents answer by replying to the bot's ticket message.
    staff_topics: bool = True
    poll_timeout: int = 25  # long-poll seconds per getUpdates (polling mode)
    poll_lease_seconds: float = 30.0  # how long the polling leader's lease lasts without renewal


@dataclass(frozen=True)
class EmailMailbox:
    name: str
    address: str = ""
    imap_host: str = ""
    imap_port: int = 993
    imap_security: str = "tls"
    smtp_host: str = ""
    smtp_port: int = 465
    smtp_security: str = "tls"
    username: str = ""
    password: Secret = field(default_factory=lambda: Secret(""))
    folder: str = "INBOX"
    archive_folder: str = ""  # intake moves a mail here once it is durable; empty: leave it in place
    # Signs the plus-address reply tokens. Empty: one is generated at first start and kept in
    # `channel_state`, shared by every instance (never derived from the password).
    reply_token_secret: Secret = field(default_factory=lambda: Secret(""))
    imap_id: bool = True  # send the ID command before SELECT (NetEase 163/126 refuse SELECT without it)
    use_idle: bool = True  # false, or a server without IDLE: poll every `poll_seconds`
    idle_seconds: float = 300.0  # IDLE is re-issued this often, well before servers drop it (29 min)
    poll_seconds: float = 60.0
    timeout_seconds: float = 30.0  # every IMAP command and SMTP exchange
    lease_seconds: float = 60.0  # the leader lease: one instance polls this mailbox
    fetch_batch: int = 50
    reconnect_max_seconds: float = 300.0
    smtp_idle_seconds: float = 60.0  # a reused SMTP connection is closed after this long unused
    auto_reply_limit: int = 5  # automatic mails to one recipient per window (agent replies: no cap)
    auto_reply_window_seconds: float = 3600.0
