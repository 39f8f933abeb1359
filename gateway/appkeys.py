"""Every typed application key, defined once."""

from __future__ import annotations

from aiohttp import web

from channels.base import ChannelRegistry
from dialog.conversations import DialogSettingsHolder
from dialog.engine import DialogEngine
from dialog.knowledge import KnowledgeBase
from gateway.accounts.audit import AuditLog
from gateway.accounts.sessions import SessionStore
from gateway.accounts.setup_links import SetupLinks
from gateway.accounts.store import AccountStore
from gateway.accounts.throttle import LoginThrottle
from gateway.attachments import GridFSAttachmentStore
from gateway.bus import MessageBus
from gateway.config import Settings
from gateway.console.live import LiveFeed
from gateway.database import Database
from gateway.operations import Operations
from gateway.outbox import Outbox
from gateway.templating import TemplateRenderer
from gateway.tokens import Principal, TokenService
from ticket_core.repository import MongoCustomerRepository, MongoTicketRepository
from ticket_core.service import TicketService

SETTINGS = web.AppKey("settings", Settings)
DATABASE = web.AppKey("database", Database)
BUS = web.AppKey("bus", MessageBus)
OUTBOX = web.AppKey("outbox", Outbox)
CHANNELS = web.AppKey("channels", ChannelRegistry)
TICKETS = web.AppKey("tickets", MongoTicketRepository)
CUSTOMERS = web.AppKey("customers", MongoCustomerRepository)
TICKET_SERVICE = web.AppKey("ticket_service", TicketService)
TOKENS = web.AppKey("tokens", TokenService)
ATTACHMENTS = web.AppKey("attachments", GridFSAttachmentStore)
RENDERER = web.AppKey("renderer", TemplateRenderer)
KNOWLEDGE = web.AppKey("knowledge", KnowledgeBase)
OPERATIONS = web.AppKey("operations", Operations)
DIALOG = web.AppKey("dialog", DialogEngine)
DIALOG_SETTINGS = web.AppKey("dialog_settings", DialogSettingsHolder)
ACCOUNTS = web.AppKey("accounts", AccountStore)
SESSIONS = web.AppKey("sessions", SessionStore)
LOGIN_THROTTLE = web.AppKey("login_throttle", LoginThrottle)
AUDIT = web.AppKey("audit", AuditLog)
SETUP_LINKS = web.AppKey("setup_links", SetupLinks)
LIVE = web.AppKey("live", LiveFeed)

PRINCIPAL = web.RequestKey("principal", Principal)
